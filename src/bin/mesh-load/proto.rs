//! The few protobuf messages the load harness serves, declared by hand with prost (field
//! numbers from google/pubsub/v1/pubsub.proto and google/cloud/bigquery/storage/v1/storage.proto),
//! so the harness needs no protoc and no generated code. Only the fields it reads or writes.

use std::collections::HashMap;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PubsubMessage {
    #[prost(bytes = "bytes", tag = "1")]
    pub data: bytes::Bytes,
    #[prost(map = "string, string", tag = "2")]
    pub attributes: HashMap<String, String>,
    #[prost(string, tag = "3")]
    pub message_id: String,
    #[prost(message, optional, tag = "4")]
    pub publish_time: Option<Timestamp>,
    #[prost(string, tag = "5")]
    pub ordering_key: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReceivedMessage {
    #[prost(string, tag = "1")]
    pub ack_id: String,
    #[prost(message, optional, tag = "2")]
    pub message: Option<PubsubMessage>,
    #[prost(int32, tag = "3")]
    pub delivery_attempt: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamingPullRequest {
    #[prost(string, tag = "1")]
    pub subscription: String,
    #[prost(string, repeated, tag = "2")]
    pub ack_ids: Vec<String>,
    #[prost(int32, repeated, tag = "3")]
    pub modify_deadline_seconds: Vec<i32>,
    #[prost(string, repeated, tag = "4")]
    pub modify_deadline_ack_ids: Vec<String>,
    #[prost(int32, tag = "5")]
    pub stream_ack_deadline_seconds: i32,
    #[prost(string, tag = "6")]
    pub client_id: String,
    #[prost(int64, tag = "7")]
    pub max_outstanding_messages: i64,
    #[prost(int64, tag = "8")]
    pub max_outstanding_bytes: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamingPullResponse {
    #[prost(message, repeated, tag = "1")]
    pub received_messages: Vec<ReceivedMessage>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AcknowledgeRequest {
    #[prost(string, tag = "1")]
    pub subscription: String,
    #[prost(string, repeated, tag = "2")]
    pub ack_ids: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ModifyAckDeadlineRequest {
    #[prost(string, tag = "1")]
    pub subscription: String,
    #[prost(int32, tag = "3")]
    pub ack_deadline_seconds: i32,
    #[prost(string, repeated, tag = "4")]
    pub ack_ids: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrowSchema {
    #[prost(bytes = "bytes", tag = "1")]
    pub serialized_schema: bytes::Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrowRecordBatch {
    #[prost(bytes = "bytes", tag = "1")]
    pub serialized_record_batch: bytes::Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrowData {
    #[prost(message, optional, tag = "1")]
    pub writer_schema: Option<ArrowSchema>,
    #[prost(message, optional, tag = "2")]
    pub rows: Option<ArrowRecordBatch>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendRowsRequest {
    #[prost(string, tag = "1")]
    pub write_stream: String,
    #[prost(message, optional, tag = "5")]
    pub arrow_rows: Option<ArrowData>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Int64Value {
    #[prost(int64, tag = "1")]
    pub value: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendResult {
    #[prost(message, optional, tag = "1")]
    pub offset: Option<Int64Value>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RowError {
    #[prost(int64, tag = "1")]
    pub index: i64,
    /// google.cloud.bigquery.storage.v1.RowError.RowErrorCode: 1 = FIELDS_ERROR.
    #[prost(int32, tag = "2")]
    pub code: i32,
    #[prost(string, tag = "3")]
    pub message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendRowsResponse {
    #[prost(message, optional, tag = "1")]
    pub append_result: Option<AppendResult>,
    #[prost(message, optional, tag = "2")]
    pub error: Option<RpcStatus>,
    #[prost(message, repeated, tag = "4")]
    pub row_errors: Vec<RowError>,
    #[prost(string, tag = "5")]
    pub write_stream: String,
}
