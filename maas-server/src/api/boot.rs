//! Boot images over API 2.0, as MAAS's `BootSourcesHandler`,
//! `BootSourceSelectionsHandler` and `BootResourcesHandler`: sources and
//! selections (what to import), boot resources (what the store holds) and
//! the import operations that start, watch and stop [`crate::images`].

use base64::Engine;
use serde_json::{Value, json};

use super::resources::iso_ms;
use super::{ApiError, Call, Reply};
use crate::db::boot;

// ---------------------------------------------------------------- sources

fn source_json(s: &boot::Source) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "url": s.url,
        "priority": s.priority,
        "enabled": s.enabled,
        "keyring_filename": s.keyring_filename,
        "keyring_data": s.keyring_data,
        "skip_keyring_verification": s.skip_keyring_verification,
        "created": iso_ms(s.created),
        "updated": iso_ms(s.updated),
        "resource_uri": format!("/MAAS/api/2.0/boot-sources/{}/", s.id),
    })
}

fn check_url(u: &str) -> Result<(), ApiError> {
    let ok = url::Url::parse(u).is_ok_and(|x| matches!(x.scheme(), "http" | "https" | "file"));
    if ok {
        Ok(())
    } else {
        Err(ApiError::field("url", "Enter a valid URL."))
    }
}

/// Applies the form fields present in the request to `s`.
fn apply_source_params(c: &mut Call<'_>, s: &mut boot::Source) -> Result<(), ApiError> {
    if let Some(u) = c.params.get("url") {
        check_url(&u)?;
        if u != s.url && boot::source_by_url(c.conn, &u)?.is_some() {
            return Err(ApiError::field(
                "url",
                "Boot source with this Url already exists.",
            ));
        }
        s.url = u;
    }
    if let Some(n) = c.params.get("name") {
        s.name = n;
    }
    if let Some(k) = c.params.get("keyring_filename") {
        s.keyring_filename = k;
    }
    // MAAS takes the keyring as a file (raw bytes) and shows it base64.
    if let Some(b) = c.params.bytes("keyring_data") {
        s.keyring_data = base64::engine::general_purpose::STANDARD.encode(b);
    }
    if let Some(p) = c.params.int("priority")? {
        s.priority = p;
    }
    if let Some(e) = c.params.bool("enabled")? {
        s.enabled = e;
    }
    if let Some(v) = c.params.bool("skip_keyring_verification")? {
        s.skip_keyring_verification = v;
    }
    if !s.keyring_filename.is_empty() && !s.keyring_data.is_empty() {
        return Err(ApiError::field(
            "__all__",
            "Only one of keyring_filename or keyring_data can be specified.",
        ));
    }
    if s.keyring_filename.is_empty() && s.keyring_data.is_empty() && !s.skip_keyring_verification {
        return Err(ApiError::field(
            "__all__",
            "One of keyring_filename or keyring_data must be specified.",
        ));
    }
    s.updated = c.now_ms;
    Ok(())
}

fn source_by_id(c: &mut Call<'_>, n: usize) -> Result<boot::Source, ApiError> {
    let id = c.path_id(n)?;
    boot::source(c.conn, id)?
        .ok_or_else(|| ApiError::not_found("No BootSource matches the given query."))
}

/// `GET boot-sources/`.
pub fn sources_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let ss = boot::sources(c.conn)?;
    Ok(Reply::Json(ss.iter().map(source_json).collect()))
}

/// `POST boot-sources/` → 201.
pub fn sources_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    if c.params.get_nonempty("url").is_none() {
        return Err(ApiError::field("url", "This field is required."));
    }
    let mut s = boot::Source {
        id: 0,
        name: String::new(),
        url: String::new(),
        keyring_filename: String::new(),
        keyring_data: String::new(),
        priority: 0,
        enabled: true,
        skip_keyring_verification: false,
        created: c.now_ms,
        updated: c.now_ms,
    };
    apply_source_params(c, &mut s)?;
    let s = boot::insert_source(c.conn, &s)?;
    Ok(Reply::JsonStatus(201, source_json(&s)))
}

/// `GET boot-sources/{id}/`.
pub fn source_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    Ok(Reply::Json(source_json(&source_by_id(c, 0)?)))
}

/// `PUT boot-sources/{id}/`.
pub fn source_update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let mut s = source_by_id(c, 0)?;
    apply_source_params(c, &mut s)?;
    boot::update_source(c.conn, &s)?;
    Ok(Reply::Json(source_json(&s)))
}

/// `DELETE boot-sources/{id}/` (and its selections).
pub fn source_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let s = source_by_id(c, 0)?;
    boot::delete_source(c.conn, s.id)?;
    Ok(Reply::NoContent)
}

// ---------------------------------------------------------------- selections

fn selection_json(s: &boot::Selection) -> Value {
    json!({
        "id": s.id,
        "boot_source_id": s.boot_source_id,
        "os": s.os,
        "release": s.release,
        "arches": s.arches,
        "subarches": s.subarches,
        "labels": s.labels,
        "resource_uri": format!(
            "/MAAS/api/2.0/boot-sources/{}/selections/{}/",
            s.boot_source_id, s.id
        ),
    })
}

fn apply_selection_params(c: &Call<'_>, s: &mut boot::Selection) {
    if let Some(v) = c.params.get_nonempty("os") {
        s.os = v;
    }
    if let Some(v) = c.params.get_nonempty("release") {
        s.release = v;
    }
    for (k, field) in [
        ("arches", &mut s.arches),
        ("subarches", &mut s.subarches),
        ("labels", &mut s.labels),
    ] {
        let v = c.params.get_list(k);
        if !v.is_empty() {
            *field = v;
        }
    }
}

fn selection_by_id(c: &mut Call<'_>) -> Result<boot::Selection, ApiError> {
    let src = source_by_id(c, 0)?;
    let id = c.path_id(1)?;
    boot::selection(c.conn, src.id, id)?
        .ok_or_else(|| ApiError::not_found("No BootSourceSelection matches the given query."))
}

fn duplicate_selection(c: &mut Call<'_>, s: &boot::Selection) -> Result<(), ApiError> {
    let dup = boot::selections(c.conn, Some(s.boot_source_id))?
        .iter()
        .any(|x| x.id != s.id && x.os == s.os && x.release == s.release);
    if dup {
        return Err(ApiError::field(
            "__all__",
            "Boot source selection with this Boot source, Os and Release already exists.",
        ));
    }
    Ok(())
}

/// MAAS validates a selection against what its source offers (its
/// `BootSourceCache`); here that is what the last import read from the
/// source. A source never read yet has nothing to validate against, and
/// reading it would mean contacting the mirror from an API request, so the
/// selection is taken as it is.
fn validate_selection(
    c: &mut Call<'_>,
    src: &boot::Source,
    s: &boot::Selection,
) -> Result<(), ApiError> {
    let Some(offered) = crate::images::source_cache(c.conn, src)? else {
        return Ok(());
    };
    let errors = crate::images::selection_errors(&offered, s);
    if errors.is_empty() {
        return Ok(());
    }
    let mut dict = serde_json::Map::new();
    for (field, msg) in errors {
        dict.insert(field.to_owned(), json!([msg]));
    }
    Err(ApiError {
        status: 400,
        body: super::ErrorBody::Fields(Value::Object(dict)),
    })
}

/// `GET boot-sources/{id}/selections/`.
pub fn selections_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let src = source_by_id(c, 0)?;
    let ss = boot::selections(c.conn, Some(src.id))?;
    Ok(Reply::Json(ss.iter().map(selection_json).collect()))
}

/// `POST boot-sources/{id}/selections/` → 201.
pub fn selections_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let src = source_by_id(c, 0)?;
    for k in ["os", "release"] {
        if c.params.get_nonempty(k).is_none() {
            return Err(ApiError::field(k, "This field is required."));
        }
    }
    let star = || vec!["*".to_owned()];
    let mut s = boot::Selection {
        id: 0,
        boot_source_id: src.id,
        os: String::new(),
        release: String::new(),
        arches: star(),
        subarches: star(),
        labels: star(),
    };
    apply_selection_params(c, &mut s);
    validate_selection(c, &src, &s)?;
    duplicate_selection(c, &s)?;
    let s = boot::insert_selection(c.conn, &s)?;
    Ok(Reply::JsonStatus(201, selection_json(&s)))
}

/// `GET boot-sources/{id}/selections/{id}/`.
pub fn selection_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    Ok(Reply::Json(selection_json(&selection_by_id(c)?)))
}

/// `PUT boot-sources/{id}/selections/{id}/`.
pub fn selection_update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let mut s = selection_by_id(c)?;
    apply_selection_params(c, &mut s);
    let src = source_by_id(c, 0)?;
    validate_selection(c, &src, &s)?;
    duplicate_selection(c, &s)?;
    boot::update_selection(c.conn, &s)?;
    Ok(Reply::Json(selection_json(&s)))
}

/// `DELETE boot-sources/{id}/selections/{id}/`.
pub fn selection_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let s = selection_by_id(c)?;
    boot::delete_selection(c.conn, s.id)?;
    Ok(Reply::NoContent)
}

// ---------------------------------------------------------------- resources

/// A resource as MAAS shows it; with `live`, its sets (incomplete ones
/// with the running import's progress).
fn resource_json(r: &boot::Resource, live: Option<&crate::images::Images>) -> Value {
    let mut v = json!({
        "id": r.id,
        "type": r.rtype,
        "name": r.name,
        "architecture": r.architecture,
        "last_deployed": null,
        "resource_uri": format!("/MAAS/api/2.0/boot-resources/{}/", r.id),
    });
    if let Value::Object(m) = &mut v {
        if !r.subarches.is_empty() {
            m.insert("subarches".into(), json!(r.subarches));
        }
        if !r.title.is_empty() {
            m.insert("title".into(), json!(r.title));
        }
        if let Some(images) = live {
            m.insert("sets".into(), crate::images::live_sets(images, r));
        }
    }
    v
}

/// `GET boot-resources/` (`type` filters: `synced`, `uploaded`).
pub fn resources_list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let want = c.params.get_nonempty("type");
    let rs = boot::resources(c.conn)?;
    Ok(Reply::Json(
        rs.iter()
            .filter(|r| {
                want.as_deref()
                    .is_none_or(|t| r.rtype.eq_ignore_ascii_case(t))
            })
            .map(|r| resource_json(r, None))
            .collect(),
    ))
}

fn resource_by_id(c: &mut Call<'_>) -> Result<boot::Resource, ApiError> {
    let id = c.path_id(0)?;
    boot::resource(c.conn, id)?
        .ok_or_else(|| ApiError::not_found("No BootResource matches the given query."))
}

/// `GET boot-resources/{id}/` with its sets and files.
pub fn resource_read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let r = resource_by_id(c)?;
    Ok(Reply::Json(resource_json(&r, Some(&c.state.images))))
}

/// `DELETE boot-resources/{id}/` (admin): the resource, its versions in
/// the store (so the rack stops serving it) and the files no other stored
/// resource shares (the store is content-addressed).
pub fn resource_delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let r = resource_by_id(c)?;
    boot::delete_resource(c.conn, r.id)?;
    if let Some(store) = c.state.images.store() {
        let report = store
            .remove_where(crate::images::store_entries_of(&r))
            .map_err(|e| ApiError::bad_request(format!("Cannot remove the image files: {e}")))?;
        if r.rtype == "Uploaded" {
            let _ = std::fs::remove_file(crate::images::upload_staging(&store, r.id));
        }
        tracing::info!(
            resource = %r.name,
            architecture = %r.architecture,
            versions = report.dropped_versions.len(),
            files = report.deleted_files,
            bytes = report.freed_bytes,
            "images: boot resource deleted"
        );
    }
    Ok(Reply::NoContent)
}

/// `GET boot-resources/?op=is_importing`.
pub fn is_importing(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    Ok(Reply::Json(json!(c.state.images.is_importing())))
}

/// `GET boot-resources/?op=import_progress` (beyond MAAS): the running or
/// last import's files and bytes, done and total, and its download rate.
pub fn import_progress(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    let mut v = c.state.images.progress_json();
    v["last_import"] = crate::images::last_import(c.conn)?.unwrap_or(Value::Null);
    Ok(Reply::Json(v))
}

/// `POST boot-resources/?op=import` (admin): starts the import in the
/// background and returns at once, as MAAS does.
pub fn import(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    let user = c.admin()?.username.clone();
    let started = c
        .state
        .images
        .start_import(c.state.pool.clone(), c.state.clock.clone(), user)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !started {
        tracing::info!("images: import requested while one is running");
    }
    Ok(Reply::Json(json!("Import of boot resources started")))
}

/// `POST boot-resources/?op=stop_import` (admin).
pub fn stop_import(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    c.state.images.stop_import();
    Ok(Reply::Json(json!(
        "Import of boot resources is being stopped"
    )))
}

// ---------------------------------------------------------------- uploads

/// The one file id of an upload's set (MAAS numbers resource files; an
/// upload has exactly one).
const UPLOAD_FILE_ID: i64 = 1;

fn upload_version(now_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(now_ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y%m%d")
        .to_string()
}

/// The set document of an upload: one file, complete or waiting for chunks.
fn upload_set(
    id: i64,
    version: &str,
    filetype: &str,
    sha256: &str,
    size: u64,
    complete: bool,
) -> Value {
    let progress = if complete { 100.0 } else { 0.0 };
    json!({
        version: {
            "version": version,
            "label": "uploaded",
            "size": size,
            "complete": complete,
            "progress": progress,
            "files": {
                filetype: {
                    "filename": filetype,
                    "filetype": filetype,
                    "sha256": sha256,
                    "size": size,
                    "complete": complete,
                    "progress": progress,
                    "upload_uri": format!(
                        "/MAAS/api/2.0/boot-resources/{id}/upload/{UPLOAD_FILE_ID}/"
                    ),
                }
            }
        }
    })
}

/// The single file of an upload's newest set: (version, filetype, sha256, size, complete).
fn upload_file(r: &boot::Resource) -> Option<(String, String, String, u64, bool)> {
    let (version, set) = r.sets.as_object()?.iter().max_by(|a, b| a.0.cmp(b.0))?;
    let (ftype, f) = set.get("files")?.as_object()?.iter().next()?;
    Some((
        version.clone(),
        ftype.clone(),
        f.get("sha256")?.as_str()?.to_owned(),
        f.get("size")?.as_u64()?,
        f.get("complete")?.as_bool()?,
    ))
}

fn store_of(c: &Call<'_>) -> Result<std::sync::Arc<maas_images::Store>, ApiError> {
    c.state
        .images
        .store()
        .ok_or_else(|| ApiError::bad_request("No image store is configured on this server."))
}

/// Promotes a fully received upload (`staged`, which the caller removes)
/// into the store and marks it complete.
fn finish_upload(
    c: &mut Call<'_>,
    r: &mut boot::Resource,
    staged: &std::path::Path,
) -> Result<(), ApiError> {
    let store = store_of(c)?;
    let (version, ftype, sha, size, _) =
        upload_file(r).ok_or_else(|| ApiError::bad_request("Resource has no upload file."))?;
    let digest: maas_images::Sha256 = sha
        .parse()
        .map_err(|_| ApiError::bad_request("Stored sha256 is not valid."))?;
    // The store wants a plain image name; `os/release` uploads keep their
    // API name in the database and a flattened one in the store.
    let image = maas_images::CustomImage {
        name: r.name.replace('/', "-"),
        architecture: r.architecture.clone(),
    };
    let now = maas_core::time::Timestamp(c.now_ms);
    store
        .register_custom(&image, &ftype, staged, &digest, size, now)
        .map_err(|e| ApiError::bad_request(format!("Upload rejected: {e}")))?;
    r.sets = upload_set(r.id, &version, &ftype, &sha, size, true);
    boot::upsert_resource(c.conn, r, c.now_ms)?;
    Ok(())
}

/// `POST boot-resources/` (admin): an uploaded image. With `content` the
/// file comes in the request; with `sha256` and `size` (python-libmaas)
/// it comes in chunks to the returned `upload_uri`.
pub fn resources_create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let name = c
        .params
        .get_nonempty("name")
        .ok_or_else(|| ApiError::field("name", "This field is required."))?;
    let architecture = c
        .params
        .get_nonempty("architecture")
        .ok_or_else(|| ApiError::field("architecture", "This field is required."))?;
    if !architecture.contains('/') {
        return Err(ApiError::field(
            "architecture",
            "Architecture must be in the form arch/subarch.",
        ));
    }
    // MAAS names plain uploads `custom/<name>`.
    let name = if name.contains('/') {
        name
    } else {
        format!("custom/{name}")
    };
    let filetype = c
        .params
        .get_nonempty("filetype")
        .unwrap_or_else(|| "tgz".into());
    let ftype = maas_images::store::custom_filetype(&filetype)
        .map_err(|e| ApiError::field("filetype", e.to_string()))?;
    let ftype = ftype.as_str().into_owned();
    let store = store_of(c)?;
    let content = c.params.bytes("content").map(<[u8]>::to_vec);
    let (sha, size) = match &content {
        Some(data) => (maas_images::Sha256::of(data), data.len() as u64),
        None => {
            let sha = c
                .params
                .get_nonempty("sha256")
                .ok_or_else(|| ApiError::field("sha256", "This field is required."))?
                .parse::<maas_images::Sha256>()
                .map_err(|_| ApiError::field("sha256", "Enter a valid sha256."))?;
            let size = c
                .params
                .int("size")?
                .filter(|s| *s > 0)
                .ok_or_else(|| ApiError::field("size", "Enter a positive size."))?;
            (sha, size as u64)
        }
    };
    let version = upload_version(c.now_ms);
    let mut r = boot::Resource {
        id: 0,
        rtype: "Uploaded".into(),
        name,
        architecture,
        subarches: String::new(),
        title: c.params.get("title").unwrap_or_default(),
        sets: json!({}),
        created: c.now_ms,
        updated: c.now_ms,
    };
    r.id = boot::upsert_resource(c.conn, &r, c.now_ms)?;
    r.sets = upload_set(r.id, &version, &ftype, &sha.to_hex(), size, false);
    boot::upsert_resource(c.conn, &r, c.now_ms)?;
    let staged = crate::images::upload_staging(&store, r.id);
    if let Some(data) = content {
        std::fs::write(&staged, data)
            .map_err(|e| ApiError::bad_request(format!("Cannot stage the upload: {e}")))?;
        let done = finish_upload(c, &mut r, &staged);
        let _ = std::fs::remove_file(&staged);
        done?;
    } else if store.contains(&sha, size) {
        // Same bytes already stored: nothing to upload (libmaas then skips).
        finish_upload(c, &mut r, &store.path_of(&sha))?;
    } else {
        let _ = std::fs::remove_file(&staged);
    }
    let r = boot::resource(c.conn, r.id)?
        .ok_or_else(|| ApiError::not_found("No BootResource matches the given query."))?;
    Ok(Reply::JsonStatus(
        201,
        resource_json(&r, Some(&c.state.images)),
    ))
}

/// `PUT boot-resources/{id}/upload/{file_id}/`: one raw chunk, appended;
/// the last one promotes the image after its size and sha256 check.
pub fn upload_chunk(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    use std::io::Write;
    c.admin()?;
    let mut r = resource_by_id(c)?;
    if c.path_id(1)? != UPLOAD_FILE_ID || r.rtype != "Uploaded" {
        return Err(ApiError::not_found(
            "No BootResourceFile matches the given query.",
        ));
    }
    let (_, _, _, size, complete) =
        upload_file(&r).ok_or_else(|| ApiError::bad_request("Resource has no upload file."))?;
    if complete {
        return Err(ApiError::bad_request("Cannot upload to a complete file."));
    }
    if c.body.is_empty() {
        return Err(ApiError::bad_request("Missing data."));
    }
    let store = store_of(c)?;
    let staged = crate::images::upload_staging(&store, r.id);
    let have = std::fs::metadata(&staged).map(|m| m.len()).unwrap_or(0);
    if have + c.body.len() as u64 > size {
        let _ = std::fs::remove_file(&staged);
        return Err(ApiError::bad_request(
            "Too much data received: the upload is larger than its announced size.",
        ));
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&staged)
        .and_then(|mut f| f.write_all(c.body).map(|()| f))
        .map_err(|e| ApiError::bad_request(format!("Cannot stage the upload: {e}")))?;
    f.flush()
        .map_err(|e| ApiError::bad_request(format!("Cannot stage the upload: {e}")))?;
    drop(f);
    if have + c.body.len() as u64 == size {
        let done = finish_upload(c, &mut r, &staged);
        let _ = std::fs::remove_file(&staged);
        done?;
    }
    Ok(Reply::Json(json!("OK")))
}
