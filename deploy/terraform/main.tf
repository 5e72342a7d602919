# GCP side of one team's mesh-ingest: per domain object a topic, an ingest subscription with a
# dead-letter topic (+ subscription), the ingest and semantic datasets, and one Google service
# account with least-privilege grants, reachable from the pods through Workload Identity.
#
# The objects are read from the same YAML files the Kubernetes overlay mounts (var.objects_dir),
# so subscription, topic and dataset names cannot drift from what the service consumes and
# writes. Tables are not created here: their schema belongs to the binary, and
# `mesh-ingest provision` creates them (deploy/README.md).
#
# Example only: add a backend (e.g. "gcs") before using it for real.

terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.0, < 8.0"
    }
  }
}

provider "google" {
  project = var.project_id
}

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  objects_dir = startswith(var.objects_dir, "/") ? var.objects_dir : "${path.module}/${var.objects_dir}"

  # One decoded object file per element (config/objects/*.yaml format).
  object_files = [
    for f in sort(fileset(local.objects_dir, "*.{yaml,yml}")) :
    yamldecode(file("${local.objects_dir}/${f}"))
  ]

  # Keyed by the object's `name`. Subscription and topic may be written as short names or as
  # full projects/<p>/… paths; only the last segment is used, in var.project_id.
  objects = {
    for o in local.object_files : o.name => {
      subscription = basename(o.subscription)
      topic        = basename(o.topic)
      # The Pub/Sub schema of a schema'd topic: `topic_schema.schema_id`, else the name.
      topic_schema = try(o.topic_schema, null) == null ? null : try(o.topic_schema.schema_id, replace(o.name, "_", "-"))
      # The object's `semantic.dataset` ([project.]dataset); else <name><suffix>.
      semantic_dataset = try(
        element(split(".", o.semantic.dataset), length(split(".", o.semantic.dataset)) - 1),
        "${replace(o.name, "-", "_")}${var.semantic_dataset_suffix}"
      )
    }
  }

  # Every dataset an ingest or dead-letter table lives in ([project.]dataset.table), once.
  table_datasets = distinct(flatten([
    for o in local.object_files : [
      for t in [o.ingest_table, o.dead_letter_table] : {
        project = length(split(".", t)) == 3 ? split(".", t)[0] : var.project_id
        dataset = split(".", t)[length(split(".", t)) - 2]
      }
    ]
  ]))
  ingest_datasets = { for d in local.table_datasets : "${d.project}.${d.dataset}" => d }

  mesh_ingest_member = "serviceAccount:${google_service_account.mesh_ingest.email}"
  # Google's Pub/Sub service agent: it moves messages to dead-letter topics and needs rights
  # for that on both ends (below).
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  workload_pool        = "${coalesce(var.gke_project_id, var.project_id)}.svc.id.goog"
}

# --- identity -----------------------------------------------------------------------------------

resource "google_service_account" "mesh_ingest" {
  project      = var.project_id
  account_id   = var.service_account_id
  display_name = "mesh-ingest (${var.namespace})"
  description  = "Pulls the ${var.namespace} team's domain events from Pub/Sub and appends them to BigQuery."
}

# The Kubernetes ServiceAccount <namespace>/mesh-ingest may act as the Google service account
# (Workload Identity; no keys). Its annotation iam.gke.io/gcp-service-account names this account.
resource "google_service_account_iam_member" "workload_identity" {
  service_account_id = google_service_account.mesh_ingest.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.workload_pool}[${var.namespace}/${var.kubernetes_service_account}]"
}

# --- Pub/Sub ------------------------------------------------------------------------------------

resource "google_pubsub_topic" "events" {
  for_each = var.create_topics ? local.objects : {}

  project = var.project_id
  name    = each.value.topic
  labels  = var.labels
}

# Where Pub/Sub puts messages that failed delivery max_delivery_attempts times. Retention on
# the topic keeps them replayable even if its subscription is recreated.
resource "google_pubsub_topic" "dead_letter" {
  for_each = local.objects

  project                    = var.project_id
  name                       = "${each.value.subscription}-dead-letter"
  message_retention_duration = var.message_retention_duration
  labels                     = var.labels
}

# A topic without subscriptions drops what is published to it: this one holds the dead letters
# until someone inspects or replays them.
resource "google_pubsub_subscription" "dead_letter" {
  for_each = local.objects

  project                    = var.project_id
  name                       = "${each.value.subscription}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  ack_deadline_seconds       = 60
  message_retention_duration = var.message_retention_duration
  labels                     = var.labels

  expiration_policy {
    ttl = "" # never expire, however long nobody reads it
  }
}

resource "google_pubsub_subscription" "ingest" {
  for_each = local.objects

  project = var.project_id
  name    = each.value.subscription
  topic = (var.create_topics
    ? google_pubsub_topic.events[each.key].id
  : "projects/${var.project_id}/topics/${each.value.topic}")

  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention_duration
  labels                     = var.labels

  # A subscription idle for 31 days is deleted by default, with its backlog.
  expiration_policy {
    ttl = ""
  }

  # Backoff for nacked / expired messages, e.g. while BigQuery refuses appends.
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  # Also what makes Pub/Sub report delivery_attempt, which the ingest and dead-letter tables
  # record.
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = var.max_delivery_attempts
  }
}

# The Pub/Sub service agent publishes dead letters to the dead-letter topic …
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.objects

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

# … and acknowledges them on the source subscription.
resource "google_pubsub_subscription_iam_member" "dead_letter_forwarder" {
  for_each = local.objects

  project      = var.project_id
  subscription = google_pubsub_subscription.ingest[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# mesh-ingest: streaming pull + ack on its subscriptions, nothing else in Pub/Sub (no topic
# rights: `mesh-ingest publish` is a development tool, run with a developer's credentials).
resource "google_pubsub_subscription_iam_member" "mesh_ingest_subscriber" {
  for_each = local.objects

  project      = var.project_id
  subscription = google_pubsub_subscription.ingest[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.mesh_ingest_member
}

# mesh-ingest's probe reads each subscription (`subscriptions.get`) every 10 s to tell whether
# Pub/Sub answers: roles/pubsub.subscriber does not include pubsub.subscriptions.get.
resource "google_pubsub_subscription_iam_member" "mesh_ingest_viewer" {
  for_each = local.objects

  project      = var.project_id
  subscription = google_pubsub_subscription.ingest[each.key].name
  role         = "roles/pubsub.viewer"
  member       = local.mesh_ingest_member
}

# A schema'd topic (`topic_schema:`): mesh-ingest reads each revision its messages name
# (schemas.get). `provision --pubsub`, run with your own credentials, creates and revises the
# schema and binds the topic.
resource "google_pubsub_schema_iam_member" "mesh_ingest_schema_viewer" {
  for_each = { for k, o in local.objects : k => o if o.topic_schema != null }

  project = var.project_id
  schema  = each.value.topic_schema
  role    = "roles/pubsub.viewer"
  member  = local.mesh_ingest_member
}

# --- BigQuery -----------------------------------------------------------------------------------

# The ingest log and dead-letter tables live here (tables by `mesh-ingest provision`).
resource "google_bigquery_dataset" "ingest" {
  for_each = local.ingest_datasets

  project                    = each.value.project
  dataset_id                 = each.value.dataset
  location                   = var.bigquery_location
  description                = "mesh-ingest: append-only ingest log and dead-letter tables (${var.namespace})."
  delete_contents_on_destroy = false
  labels                     = var.labels
}

# mesh-ingest appends with the Storage Write API (default stream): that needs
# bigquery.tables.updateData (+ tables.get) on the tables, which dataEditor on the dataset
# grants. The service itself runs no query jobs; `materialize` does (see the semantic datasets).
resource "google_bigquery_dataset_iam_member" "mesh_ingest_editor" {
  for_each = local.ingest_datasets

  project    = each.value.project
  dataset_id = google_bigquery_dataset.ingest[each.key].dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.mesh_ingest_member
}

# The typed, consumer-facing layer: the state tables, their views and the watermark table.
# With `materialize` (the CronJob in deploy/materialize), mesh-ingest keeps them: it runs query
# jobs (jobUser, project level) and writes these datasets (dataEditor). Teams that keep the
# layer with Dataform set var.materialize = false and grant Dataform's account instead.
resource "google_bigquery_dataset" "semantic" {
  for_each = local.objects

  project                    = var.project_id
  dataset_id                 = each.value.semantic_dataset
  location                   = var.bigquery_location
  description                = "Semantic layer of the ${each.key} data product (${var.namespace})."
  delete_contents_on_destroy = false
  labels                     = var.labels
}

resource "google_bigquery_dataset_iam_member" "mesh_ingest_semantic_editor" {
  for_each = var.materialize ? local.objects : {}

  project    = var.project_id
  dataset_id = google_bigquery_dataset.semantic[each.key].dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.mesh_ingest_member
}

resource "google_project_iam_member" "mesh_ingest_job_user" {
  count = var.materialize ? 1 : 0

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = local.mesh_ingest_member
}

# --- KEDA ---------------------------------------------------------------------------------------

# KEDA's gcp-pubsub scaler reads pubsub.googleapis.com/subscription/num_undelivered_messages
# from Cloud Monitoring as KEDA's operator, not as mesh-ingest. Cloud Monitoring has no
# per-subscription IAM, so this is project-level read access to metrics.
resource "google_project_iam_member" "keda_monitoring_viewer" {
  count = var.keda_member == null ? 0 : 1

  project = var.project_id
  role    = "roles/monitoring.viewer"
  member  = var.keda_member
}

# --- Classification: policy tags and masking --------------------------------------------------

# One taxonomy of the team's classifications (`classification:` of the object files' fields and
# `payload_classification`), in the datasets' location (policy tags must be where the tables
# are). `mesh-ingest provision` attaches each tag to the classified columns of the state tables
# and to the ingest table's `payload` column once base.yaml lists them under gcp.policy_tags
# (output `policy_tags`). A view cannot carry a tag: its readers meet the table's.
resource "google_data_catalog_taxonomy" "classification" {
  count = length(var.classifications) == 0 ? 0 : 1

  project                = var.project_id
  region                 = lower(var.bigquery_location)
  display_name           = "mesh-ingest ${var.namespace}"
  description            = "Classifications of the data products of ${var.namespace}, attached by mesh-ingest."
  activated_policy_types = ["FINE_GRAINED_ACCESS_CONTROL"]
}

resource "google_data_catalog_policy_tag" "classification" {
  for_each = { for c in var.classifications : c.name => c }

  taxonomy     = google_data_catalog_taxonomy.classification[0].id
  display_name = each.key
  description  = "Columns classified `${each.key}` in the object files."
}

# Masking follows from the tag: a reader with roles/bigquerydatapolicy.maskedReader on the data
# policy sees the masked value (e.g. SHA256 of it), one with the tag's Fine-Grained Reader role
# sees the value, anyone else gets an access error on that column (and `SELECT * EXCEPT` works).
resource "google_bigquery_datapolicy_data_policy" "masking" {
  for_each = { for c in var.classifications : c.name => c if c.masking != null }

  project          = var.project_id
  location         = lower(var.bigquery_location)
  data_policy_id   = "mesh_ingest_${replace(each.key, "-", "_")}_masked"
  policy_tag       = google_data_catalog_policy_tag.classification[each.key].name
  data_policy_type = "DATA_MASKING_POLICY"
  data_masking_policy {
    predefined_expression = each.value.masking
  }
}

resource "google_data_catalog_policy_tag_iam_member" "fine_grained_reader" {
  for_each = {
    for pair in flatten([
      for c in var.classifications : [for m in c.readers : { name = c.name, member = m }]
    ]) : "${pair.name}/${pair.member}" => pair
  }

  policy_tag = google_data_catalog_policy_tag.classification[each.value.name].name
  role       = "roles/datacatalog.categoryFineGrainedReader"
  member     = each.value.member
}

resource "google_bigquery_datapolicy_data_policy_iam_member" "masked_reader" {
  for_each = {
    for pair in flatten([
      for c in var.classifications : [for m in c.masked_readers : { name = c.name, member = m }]
      if c.masking != null
    ]) : "${pair.name}/${pair.member}" => pair
  }

  project        = var.project_id
  location       = lower(var.bigquery_location)
  data_policy_id = google_bigquery_datapolicy_data_policy.masking[each.value.name].data_policy_id
  role           = "roles/bigquerydatapolicy.maskedReader"
  member         = each.value.member
}

# mesh-ingest writes whole rows into tagged columns: the Storage Write API needs no reader
# role for that, but `materialize` reads the ingest table's tagged `payload` to build the state
# tables, so its service account reads every classification.
resource "google_data_catalog_policy_tag_iam_member" "mesh_ingest_reader" {
  for_each = var.materialize ? { for c in var.classifications : c.name => c } : {}

  policy_tag = google_data_catalog_policy_tag.classification[each.key].name
  role       = "roles/datacatalog.categoryFineGrainedReader"
  member     = local.mesh_ingest_member
}

# Readers of the data products: the semantic datasets only. The ingest datasets, which hold the
# dead-letter tables (bodies as received, personal data included), are granted to nobody but
# mesh-ingest; the owning team reaches them through var.dead_letter_readers, nobody else.
resource "google_bigquery_dataset_iam_member" "semantic_reader" {
  for_each = {
    for pair in flatten([
      for k, o in local.objects : [for m in var.product_readers : { key = k, member = m }]
    ]) : "${pair.key}/${pair.member}" => pair
  }

  project    = var.project_id
  dataset_id = google_bigquery_dataset.semantic[each.value.key].dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value.member
}

resource "google_bigquery_dataset_iam_member" "dead_letter_reader" {
  for_each = {
    for pair in flatten([
      for k, d in local.ingest_datasets : [for m in var.dead_letter_readers : { key = k, member = m }]
    ]) : "${pair.key}/${pair.member}" => pair
  }

  project    = local.ingest_datasets[each.value.key].project
  dataset_id = google_bigquery_dataset.ingest[each.value.key].dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value.member
}
