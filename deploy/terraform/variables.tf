variable "project_id" {
  description = "GCP project holding the team's topics, subscriptions, datasets and the mesh-ingest service account (APP__GCP__PROJECT in the overlay)."
  type        = string
}

variable "gke_project_id" {
  description = "Project of the GKE cluster, whose Workload Identity pool (<project>.svc.id.goog) the pods authenticate through. Defaults to project_id."
  type        = string
  default     = null
}

variable "namespace" {
  description = "Kubernetes namespace of the team's mesh-ingest (the overlay's `namespace`)."
  type        = string
  default     = "orders-and-customers"
}

variable "kubernetes_service_account" {
  description = "Kubernetes ServiceAccount the pods run as (deploy/base/serviceaccount.yaml)."
  type        = string
  default     = "mesh-ingest"
}

variable "service_account_id" {
  description = "Account id of the Google service account mesh-ingest runs as (<id>@<project>.iam.gserviceaccount.com)."
  type        = string
  default     = "mesh-ingest"
}

variable "objects_dir" {
  description = "Directory of the team's object files (the same files the overlay mounts), relative to this module unless absolute. Topics, subscriptions and datasets are derived from them, so the two cannot drift apart."
  type        = string
  default     = "../../config/objects"
}

variable "bigquery_location" {
  description = "Location of the BigQuery datasets."
  type        = string
  default     = "EU"
}

variable "semantic_dataset_suffix" {
  description = "An object without `semantic.dataset` in its file gets a semantic dataset named <object name><suffix> for the typed, consumer-facing layer built on the ingest log."
  type        = string
  default     = "_semantic"
}

variable "create_topics" {
  description = "Create the objects' topics here. Set to false when the producing services own their topics (they must then be in project_id)."
  type        = bool
  default     = true
}

variable "ack_deadline_seconds" {
  description = "Ack deadline of the ingest subscriptions. The client extends leases while a message waits in a batch; this is the initial deadline."
  type        = number
  default     = 60

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "Pub/Sub accepts ack deadlines from 10 to 600 seconds."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries after which Pub/Sub moves a message to the subscription's dead-letter topic. Content problems never get there (mesh-ingest writes them to the object's dead-letter table and acks); this catches messages that keep failing delivery, e.g. a pod that crashes on them."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts max_delivery_attempts from 5 to 100."
  }
}

variable "message_retention_duration" {
  description = "How long subscriptions (and dead-letter topics) keep unacknowledged messages: the window in which an outage of mesh-ingest or BigQuery loses nothing."
  type        = string
  default     = "604800s" # 7 days, the maximum for subscriptions
}

variable "keda_member" {
  description = "IAM member KEDA's operator authenticates as (TriggerAuthentication podIdentity gcp), e.g. serviceAccount:keda-operator@platform-project.iam.gserviceaccount.com. When set, it gets roles/monitoring.viewer on project_id to read the subscriptions' backlog. Null: the platform team grants it elsewhere."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels for every resource that takes them."
  type        = map(string)
  default = {
    app  = "mesh-ingest"
    team = "orders-and-customers"
  }
}

variable "materialize" {
  description = "Whether mesh-ingest keeps the semantic state tables (the materialize CronJob): grants its service account roles/bigquery.jobUser and dataEditor on the semantic datasets."
  type        = bool
  default     = true
}

variable "classifications" {
  description = "The classifications the object files use (`classification:`, `payload_classification`), most restrictive first: each becomes a policy tag; `masking` (a BigQuery predefined masking expression such as SHA256, ALWAYS_NULL, DEFAULT_MASKING_VALUE, or null for none) a data policy; `readers` see the values, `masked_readers` the masked ones."
  type = list(object({
    name           = string
    masking        = optional(string)
    readers        = optional(list(string), [])
    masked_readers = optional(list(string), [])
  }))
  default = [{ name = "pii", masking = "SHA256" }]
}

variable "product_readers" {
  description = "Members (e.g. group:analysts@example.com) who read the data products: roles/bigquery.dataViewer on the semantic datasets only."
  type        = list(string)
  default     = []
}

variable "dead_letter_readers" {
  description = "Members who may read the ingest datasets, which hold the dead-letter tables (bodies as received, personal data included): the owning team, nobody else."
  type        = list(string)
  default     = []
}

variable "dataplex_catalog" {
  description = "Whether to attach the data contract (aspect type mesh-ingest-data-product) to each semantic dataset's entry in the Dataplex Universal Catalog."
  type        = bool
  default     = true
}

variable "contract_base_url" {
  description = "Where consumers read the object files (the contracts), e.g. the repository's web address of config/objects; written into each product's Dataplex aspect and listing. Null: var.objects_dir."
  type        = string
  default     = null
}

variable "analytics_hub" {
  description = "An optional Analytics Hub exchange with one listing per semantic dataset, for consumers in other projects: `subscribers` (IAM members) get roles/analyticshub.subscriber on every listing; `restrict_egress` forbids copying and exporting the shared data; `primary_contact` is an e-mail address or URL of the owning team."
  type = object({
    enabled         = bool
    subscribers     = optional(list(string), [])
    restrict_egress = optional(bool, true)
    primary_contact = optional(string)
  })
  default = { enabled = false }
}
