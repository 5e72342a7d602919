# Where Google Cloud users look for data: the Dataplex Universal Catalog and, optionally, an
# Analytics Hub listing per data product.
#
# Dataplex harvests every BigQuery dataset, table and view into the system entry group
# `@bigquery` on its own, with the labels and descriptions `mesh-ingest provision` writes. What
# it cannot know is the contract: who owns the product, which majors exist, which one is being
# retired and when. That is attached here as one aspect (`mesh-ingest-data-product`) on each
# semantic dataset's entry, read from the same object files as everything else in this module,
# so Dataplex search can filter on it (e.g. `aspect:mesh-ingest-data-product.owner=team-orders`).
#
# Why entries and aspects, not Dataplex "data products": aspects on BigQuery system entries are
# generally available (google_dataplex_entry in the GA provider); the data product resource
# exists only in the beta provider, i.e. Preview. Revisit when it is GA.

locals {
  # Google's own project holding the system entry types (bigquery-dataset, bigquery-table, …).
  dataplex_system_types = "projects/655216118709/locations/global/entryTypes"
  # BigQuery entries live in the dataset's location, lower case (us, eu, europe-west3, …).
  dataplex_location = lower(var.bigquery_location)
  aspect_type_id    = "mesh-ingest-data-product"

  # The object file each object was read from, for the `contract` field.
  object_file_names = {
    for f in fileset(local.objects_dir, "*.{yaml,yml}") :
    yamldecode(file("${local.objects_dir}/${f}")).name => f
  }

  # One aspect per object: the contract as consumers need it to choose a major.
  data_product_aspects = {
    for o in local.object_files : o.name => {
      data_product     = o.name
      description      = try(o.description, o.semantic.description, "")
      owner            = try(o.owner, "")
      domain           = try(o.domain, "")
      contract_version = try(o.version, "1.0.0")
      contract         = "${coalesce(var.contract_base_url, var.objects_dir)}/${local.object_file_names[o.name]}"
      freshness        = try(o.sla.freshness, "not promised")
      managed_by       = "mesh-ingest"
      # The current major (from `version`) first, then semantic.previous, as provision names
      # their views: <view>_v<N>.
      majors = concat(
        [{
          major  = tonumber(split(".", try(o.version, "1.0.0"))[0])
          view   = "${try(o.semantic.view, o.name)}_v${split(".", try(o.version, "1.0.0"))[0]}"
          status = "CURRENT"
          sunset = ""
        }],
        [
          for p in try(o.semantic.previous, []) : {
            major  = p.major
            view   = "${try(o.semantic.view, o.name)}_v${p.major}"
            status = "DEPRECATED"
            sunset = p.sunset
          }
        ]
      )
    }
  }
}

# --- Dataplex Universal Catalog ----------------------------------------------------------------

# Global, so that one type serves datasets in any location.
resource "google_dataplex_aspect_type" "data_product" {
  count = var.dataplex_catalog ? 1 : 0

  project        = var.project_id
  location       = "global"
  aspect_type_id = local.aspect_type_id
  display_name   = "mesh-ingest data product"
  description    = "The data contract of a data product kept by mesh-ingest: owner, domain, freshness, and its majors with their sunsets."
  labels         = var.labels

  metadata_template = jsonencode({
    name = "mesh-ingest-data-product"
    type = "record"
    recordFields = [
      { name = "data_product", type = "string", index = 1, constraints = { required = true }, annotations = { displayName = "Data product", description = "The object's name; its views are <view>_v<major>." } },
      { name = "description", type = "string", index = 2, annotations = { displayName = "Description" } },
      { name = "owner", type = "string", index = 3, constraints = { required = true }, annotations = { displayName = "Owner", description = "The team that owns the contract; ask it for access to classified columns." } },
      { name = "domain", type = "string", index = 4, annotations = { displayName = "Domain" } },
      { name = "contract_version", type = "string", index = 5, constraints = { required = true }, annotations = { displayName = "Contract version", description = "Semantic version of the contract; its MAJOR is the current major." } },
      { name = "contract", type = "string", index = 6, annotations = { displayName = "Contract", description = "Where the object file (the contract) lives." } },
      { name = "freshness", type = "string", index = 7, annotations = { displayName = "Freshness", description = "Promised upper bound from event time to the row in the data product." } },
      { name = "managed_by", type = "string", index = 8, annotations = { displayName = "Managed by" } },
      {
        name  = "majors"
        type  = "array"
        index = 9
        annotations = {
          displayName = "Majors"
          description = "Every major kept side by side: the current one and deprecated ones until their sunset."
        }
        arrayItems = {
          name = "major_version"
          type = "record"
          recordFields = [
            { name = "major", type = "int", index = 1, constraints = { required = true }, annotations = { displayName = "Major" } },
            { name = "view", type = "string", index = 2, constraints = { required = true }, annotations = { displayName = "View" } },
            {
              name        = "status"
              type        = "enum"
              index       = 3
              constraints = { required = true }
              annotations = { displayName = "Status" }
              enumValues  = [{ name = "CURRENT", index = 1 }, { name = "DEPRECATED", index = 2 }]
            },
            { name = "sunset", type = "string", index = 4, annotations = { displayName = "Sunset", description = "YYYY-MM-DD after which a deprecated major may be retired; empty for the current one." } },
          ]
        }
      },
    ]
  })
}

# The semantic dataset's entry exists as soon as Dataplex has harvested the dataset (the provider
# retries until it has); Terraform only adds the aspect to it. Destroying this resource removes
# the aspect, not the entry or the dataset.
resource "google_dataplex_entry" "semantic_dataset" {
  for_each = var.dataplex_catalog ? local.objects : {}

  project        = data.google_project.this.number
  location       = local.dataplex_location
  entry_group_id = "@bigquery"
  entry_id       = "bigquery.googleapis.com/projects/${var.project_id}/datasets/${google_bigquery_dataset.semantic[each.key].dataset_id}"
  entry_type     = "${local.dataplex_system_types}/bigquery-dataset"

  fully_qualified_name = "bigquery:${var.project_id}.${google_bigquery_dataset.semantic[each.key].dataset_id}"

  aspects {
    aspect_key = "${data.google_project.this.number}.global.${local.aspect_type_id}"
    aspect {
      data = jsonencode(local.data_product_aspects[each.key])
    }
  }

  depends_on = [google_dataplex_aspect_type.data_product]
}

# --- Analytics Hub (optional) ------------------------------------------------------------------

# One private exchange for the team, one listing per data product: a subscriber in another
# project gets a linked, read-only dataset of the semantic dataset (views and state tables; no
# copy). The ingest datasets, with the dead-letter tables, are never listed.
resource "google_bigquery_analytics_hub_data_exchange" "products" {
  count = var.analytics_hub.enabled ? 1 : 0

  project          = var.project_id
  location         = local.dataplex_location
  data_exchange_id = "${replace(var.namespace, "-", "_")}_data_products"
  display_name     = "${var.namespace} data products"
  description      = "Data products kept by mesh-ingest for ${var.namespace}; each listing is one semantic dataset, its contract in the description."
  primary_contact  = var.analytics_hub.primary_contact
}

resource "google_bigquery_analytics_hub_listing" "product" {
  for_each = var.analytics_hub.enabled ? local.objects : {}

  project          = var.project_id
  location         = local.dataplex_location
  data_exchange_id = google_bigquery_analytics_hub_data_exchange.products[0].data_exchange_id
  listing_id       = replace(each.key, "-", "_")
  display_name     = each.key
  description      = local.data_product_aspects[each.key].description
  primary_contact  = var.analytics_hub.primary_contact
  documentation = join("\n", concat(
    [
      "Owner: ${local.data_product_aspects[each.key].owner}; domain: ${local.data_product_aspects[each.key].domain}.",
      "Contract ${local.data_product_aspects[each.key].contract_version}: ${local.data_product_aspects[each.key].contract}.",
      "Freshness: ${local.data_product_aspects[each.key].freshness}.",
      "",
    ],
    [
      for m in local.data_product_aspects[each.key].majors :
      m.status == "CURRENT" ? "- ${m.view}: current major." : "- ${m.view}: deprecated, sunset ${m.sunset}."
    ]
  ))

  bigquery_dataset {
    dataset = google_bigquery_dataset.semantic[each.key].id
  }

  # Subscribers query in place; they cannot copy or export the shared tables.
  restricted_export_config {
    enabled               = var.analytics_hub.restrict_egress
    restrict_query_result = var.analytics_hub.restrict_egress
  }
}

resource "google_bigquery_analytics_hub_listing_iam_member" "subscriber" {
  for_each = {
    for pair in flatten([
      for k, o in local.objects : [
        for m in var.analytics_hub.subscribers : { key = k, member = m }
      ] if var.analytics_hub.enabled
    ]) : "${pair.key}/${pair.member}" => pair
  }

  project          = var.project_id
  location         = local.dataplex_location
  data_exchange_id = google_bigquery_analytics_hub_data_exchange.products[0].data_exchange_id
  listing_id       = google_bigquery_analytics_hub_listing.product[each.value.key].listing_id
  role             = "roles/analyticshub.subscriber"
  member           = each.value.member
}
