output "google_service_account_email" {
  description = "Put into the overlay's ServiceAccount annotation iam.gke.io/gcp-service-account."
  value       = google_service_account.mesh_ingest.email
}

output "workload_identity_member" {
  description = "The Kubernetes ServiceAccount allowed to act as the Google service account."
  value       = google_service_account_iam_member.workload_identity.member
}

output "subscriptions" {
  description = "Ingest subscription per object (full paths, as in the KEDA triggers' subscriptionName)."
  value       = { for k, s in google_pubsub_subscription.ingest : k => s.id }
}

output "topics" {
  description = "Event topic per object."
  value = {
    for k, o in local.objects : k => "projects/${var.project_id}/topics/${o.topic}"
  }
}

output "dead_letter_subscriptions" {
  description = "Where messages that exhausted max_delivery_attempts wait, per object."
  value       = { for k, s in google_pubsub_subscription.dead_letter : k => s.id }
}

output "ingest_datasets" {
  description = "Datasets of the ingest and dead-letter tables."
  value       = [for d in google_bigquery_dataset.ingest : "${d.project}.${d.dataset_id}"]
}

output "semantic_datasets" {
  description = "Semantic-layer dataset per object."
  value       = { for k, d in google_bigquery_dataset.semantic : k => "${d.project}.${d.dataset_id}" }
}

output "policy_tags" {
  description = "Paste under gcp.policy_tags in the deployment's config (most restrictive first, as var.classifications lists them)."
  value = [
    for c in var.classifications : {
      classification = c.name
      tag            = google_data_catalog_policy_tag.classification[c.name].name
    }
  ]
}

output "dataplex_entries" {
  description = "Dataplex entry of each semantic dataset, carrying the mesh-ingest-data-product aspect."
  value       = { for k, e in google_dataplex_entry.semantic_dataset : k => e.name }
}

output "analytics_hub_listings" {
  description = "Analytics Hub listing per data product (when var.analytics_hub.enabled)."
  value       = { for k, l in google_bigquery_analytics_hub_listing.product : k => l.name }
}
