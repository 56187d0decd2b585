//! Boot sources, their selections and the boot resources the image store
//! holds (`boot_sources`, `boot_source_selections`, `boot_resources`).
//!
//! List-valued selection fields (`arches`, …) are JSON arrays in text
//! columns; a resource's `sets` is the JSON document the API shows.

use diesel::prelude::*;

use super::DbConn;
use super::schema::{boot_resources, boot_source_selections, boot_sources};
use crate::error::{Error, Result};

/// A stored boot source.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = boot_sources)]
pub struct Source {
    /// Row id, the API's `id`.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Mirror URL.
    pub url: String,
    /// Keyring file on the server.
    pub keyring_filename: String,
    /// Keyring bytes, base64 (as the API shows them).
    pub keyring_data: String,
    /// Higher first.
    pub priority: i64,
    /// Disabled sources are not imported from.
    pub enabled: bool,
    /// Accept unsigned documents.
    pub skip_keyring_verification: bool,
    /// Created, ms since the epoch.
    pub created: i64,
    /// Updated, ms since the epoch.
    pub updated: i64,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("keyring_filename", &self.keyring_filename)
            .field("keyring_data_len", &self.keyring_data.len())
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// A stored selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Row id.
    pub id: i64,
    /// Its source.
    pub boot_source_id: i64,
    /// `ubuntu`, `*`, …
    pub os: String,
    /// `jammy`, `*`, …
    pub release: String,
    /// Architectures (`*` = all).
    pub arches: Vec<String>,
    /// Kernel subarchitectures.
    pub subarches: Vec<String>,
    /// Stream labels.
    pub labels: Vec<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = boot_source_selections)]
struct SelectionRow {
    id: i64,
    boot_source_id: i64,
    os: String,
    release: String,
    arches: String,
    subarches: String,
    labels: String,
}

fn list_of(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|_| vec!["*".to_owned()])
}

impl From<SelectionRow> for Selection {
    fn from(r: SelectionRow) -> Self {
        Selection {
            id: r.id,
            boot_source_id: r.boot_source_id,
            os: r.os,
            release: r.release,
            arches: list_of(&r.arches),
            subarches: list_of(&r.subarches),
            labels: list_of(&r.labels),
        }
    }
}

/// A stored boot resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Row id.
    pub id: i64,
    /// `Synced` or `Uploaded`.
    pub rtype: String,
    /// `os/release`.
    pub name: String,
    /// `arch/subarch`.
    pub architecture: String,
    /// Compatible subarches, comma-separated.
    pub subarches: String,
    /// Title.
    pub title: String,
    /// The API's `sets` document.
    pub sets: serde_json::Value,
    /// Created, ms since the epoch.
    pub created: i64,
    /// Updated, ms since the epoch.
    pub updated: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = boot_resources)]
struct ResourceRow {
    id: i64,
    rtype: String,
    name: String,
    architecture: String,
    subarches: String,
    title: String,
    sets: String,
    created: i64,
    updated: i64,
}

impl TryFrom<ResourceRow> for Resource {
    type Error = Error;
    fn try_from(r: ResourceRow) -> Result<Self> {
        Ok(Resource {
            id: r.id,
            rtype: r.rtype,
            name: r.name,
            architecture: r.architecture,
            subarches: r.subarches,
            title: r.title,
            sets: serde_json::from_str(&r.sets)?,
            created: r.created,
            updated: r.updated,
        })
    }
}

// ---------------------------------------------------------------- sources

/// Every source, by id.
pub fn sources(conn: &mut DbConn) -> Result<Vec<Source>> {
    Ok(boot_sources::table
        .order(boot_sources::id.asc())
        .select(Source::as_select())
        .load(conn)?)
}

/// The source with `id`.
pub fn source(conn: &mut DbConn, id: i64) -> Result<Option<Source>> {
    Ok(boot_sources::table
        .filter(boot_sources::id.eq(id))
        .select(Source::as_select())
        .first(conn)
        .optional()?)
}

/// The source with `url`.
pub fn source_by_url(conn: &mut DbConn, url: &str) -> Result<Option<Source>> {
    Ok(boot_sources::table
        .filter(boot_sources::url.eq(url))
        .select(Source::as_select())
        .first(conn)
        .optional()?)
}

/// Inserts `s` (its `id` is ignored) and returns it with its id.
pub fn insert_source(conn: &mut DbConn, s: &Source) -> Result<Source> {
    diesel::insert_into(boot_sources::table)
        .values((
            boot_sources::name.eq(&s.name),
            boot_sources::url.eq(&s.url),
            boot_sources::keyring_filename.eq(&s.keyring_filename),
            boot_sources::keyring_data.eq(&s.keyring_data),
            boot_sources::priority.eq(s.priority),
            boot_sources::enabled.eq(s.enabled),
            boot_sources::skip_keyring_verification.eq(s.skip_keyring_verification),
            boot_sources::created.eq(s.created),
            boot_sources::updated.eq(s.updated),
        ))
        .execute(conn)?;
    source_by_url(conn, &s.url)?.ok_or_else(|| Error::Refused("boot source vanished".into()))
}

/// Replaces the fields of the source with `s.id`.
pub fn update_source(conn: &mut DbConn, s: &Source) -> Result<()> {
    diesel::update(boot_sources::table.filter(boot_sources::id.eq(s.id)))
        .set((
            boot_sources::name.eq(&s.name),
            boot_sources::url.eq(&s.url),
            boot_sources::keyring_filename.eq(&s.keyring_filename),
            boot_sources::keyring_data.eq(&s.keyring_data),
            boot_sources::priority.eq(s.priority),
            boot_sources::enabled.eq(s.enabled),
            boot_sources::skip_keyring_verification.eq(s.skip_keyring_verification),
            boot_sources::updated.eq(s.updated),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes a source and its selections.
pub fn delete_source(conn: &mut DbConn, id: i64) -> Result<()> {
    // Explicit rather than relying on ON DELETE CASCADE, which SQLite only
    // honours with `foreign_keys` on.
    diesel::delete(
        boot_source_selections::table.filter(boot_source_selections::boot_source_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(boot_sources::table.filter(boot_sources::id.eq(id))).execute(conn)?;
    Ok(())
}

// ---------------------------------------------------------------- selections

/// The selections of source `source_id` (every source's when `None`), by id.
pub fn selections(conn: &mut DbConn, source_id: Option<i64>) -> Result<Vec<Selection>> {
    let mut q = boot_source_selections::table
        .order(boot_source_selections::id.asc())
        .select(SelectionRow::as_select())
        .into_boxed();
    if let Some(id) = source_id {
        q = q.filter(boot_source_selections::boot_source_id.eq(id));
    }
    Ok(q.load(conn)?.into_iter().map(Selection::from).collect())
}

/// The selection `id` of source `source_id`.
pub fn selection(conn: &mut DbConn, source_id: i64, id: i64) -> Result<Option<Selection>> {
    Ok(boot_source_selections::table
        .filter(boot_source_selections::id.eq(id))
        .filter(boot_source_selections::boot_source_id.eq(source_id))
        .select(SelectionRow::as_select())
        .first(conn)
        .optional()?
        .map(Selection::from))
}

fn json_list(v: &[String]) -> Result<String> {
    Ok(serde_json::to_string(v)?)
}

/// Inserts `s` (its `id` is ignored) and returns it with its id.
pub fn insert_selection(conn: &mut DbConn, s: &Selection) -> Result<Selection> {
    diesel::insert_into(boot_source_selections::table)
        .values((
            boot_source_selections::boot_source_id.eq(s.boot_source_id),
            boot_source_selections::os.eq(&s.os),
            boot_source_selections::release.eq(&s.release),
            boot_source_selections::arches.eq(json_list(&s.arches)?),
            boot_source_selections::subarches.eq(json_list(&s.subarches)?),
            boot_source_selections::labels.eq(json_list(&s.labels)?),
        ))
        .execute(conn)?;
    selections(conn, Some(s.boot_source_id))?
        .into_iter()
        .find(|x| x.os == s.os && x.release == s.release)
        .ok_or_else(|| Error::Refused("selection vanished".into()))
}

/// Replaces the fields of the selection with `s.id`.
pub fn update_selection(conn: &mut DbConn, s: &Selection) -> Result<()> {
    diesel::update(boot_source_selections::table.filter(boot_source_selections::id.eq(s.id)))
        .set((
            boot_source_selections::os.eq(&s.os),
            boot_source_selections::release.eq(&s.release),
            boot_source_selections::arches.eq(json_list(&s.arches)?),
            boot_source_selections::subarches.eq(json_list(&s.subarches)?),
            boot_source_selections::labels.eq(json_list(&s.labels)?),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes a selection.
pub fn delete_selection(conn: &mut DbConn, id: i64) -> Result<()> {
    diesel::delete(boot_source_selections::table.filter(boot_source_selections::id.eq(id)))
        .execute(conn)?;
    Ok(())
}

// ---------------------------------------------------------------- resources

/// Every boot resource, by id.
pub fn resources(conn: &mut DbConn) -> Result<Vec<Resource>> {
    boot_resources::table
        .order(boot_resources::id.asc())
        .select(ResourceRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Resource::try_from)
        .collect()
}

/// The boot resource `id`.
pub fn resource(conn: &mut DbConn, id: i64) -> Result<Option<Resource>> {
    boot_resources::table
        .filter(boot_resources::id.eq(id))
        .select(ResourceRow::as_select())
        .first(conn)
        .optional()?
        .map(Resource::try_from)
        .transpose()
}

/// Inserts or updates the resource keyed by (name, architecture, rtype);
/// keeps its id when it exists. Returns the id.
pub fn upsert_resource(conn: &mut DbConn, r: &Resource, now_ms: i64) -> Result<i64> {
    let key = boot_resources::table
        .filter(boot_resources::name.eq(&r.name))
        .filter(boot_resources::architecture.eq(&r.architecture))
        .filter(boot_resources::rtype.eq(&r.rtype));
    let sets = serde_json::to_string(&r.sets)?;
    let existing: Option<i64> = key.select(boot_resources::id).first(conn).optional()?;
    if let Some(id) = existing {
        diesel::update(boot_resources::table.filter(boot_resources::id.eq(id)))
            .set((
                boot_resources::subarches.eq(&r.subarches),
                boot_resources::title.eq(&r.title),
                boot_resources::sets.eq(&sets),
                boot_resources::updated.eq(now_ms),
            ))
            .execute(conn)?;
        return Ok(id);
    }
    diesel::insert_into(boot_resources::table)
        .values((
            boot_resources::rtype.eq(&r.rtype),
            boot_resources::name.eq(&r.name),
            boot_resources::architecture.eq(&r.architecture),
            boot_resources::subarches.eq(&r.subarches),
            boot_resources::title.eq(&r.title),
            boot_resources::sets.eq(&sets),
            boot_resources::created.eq(now_ms),
            boot_resources::updated.eq(now_ms),
        ))
        .execute(conn)?;
    key.select(boot_resources::id)
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::Refused("boot resource vanished".into()))
}

/// Deletes the resources of type `rtype` whose id is not in `keep`.
pub fn delete_resources_except(conn: &mut DbConn, rtype: &str, keep: &[i64]) -> Result<usize> {
    Ok(diesel::delete(
        boot_resources::table
            .filter(boot_resources::rtype.eq(rtype))
            .filter(boot_resources::id.ne_all(keep)),
    )
    .execute(conn)?)
}

/// Deletes the resource `id`; whether it existed.
pub fn delete_resource(conn: &mut DbConn, id: i64) -> Result<bool> {
    Ok(diesel::delete(boot_resources::table.filter(boot_resources::id.eq(id))).execute(conn)? > 0)
}
