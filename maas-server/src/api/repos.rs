//! MAAS's package repositories (`package-repositories/`): the Ubuntu archive
//! and ports archive every MAAS has (where an operator puts a local mirror),
//! plus additional repositories and PPAs; and the APT settings a machine
//! gets from them and from the `http_proxy` setting
//! ([`apt_for`], used wherever preseeds, curtin and vendor data are rendered).

use maas_core::render::{AptConfig, AptSource};
use serde_json::{Map, Value, json};

use super::{ApiError, Call, Reply};
use crate::db::{DbConn, objects};

/// The objects-table kind; the object's name is the repository's.
pub const KIND: &str = "package_repository";

const MAIN: &str = "main_archive";
const PORTS: &str = "ports_archive";
const MAIN_ARCHES: [&str; 2] = ["amd64", "i386"];
const PORTS_ARCHES: [&str; 4] = ["armhf", "arm64", "ppc64el", "s390x"];
const POCKETS_TO_DISABLE: [&str; 3] = ["updates", "security", "backports"];
const COMPONENTS_TO_DISABLE: [&str; 3] = ["restricted", "universe", "multiverse"];
/// Longest name MAAS's model takes.
const NAME_MAX: usize = 41;

/// One repository, as stored.
#[derive(Debug, Clone, PartialEq)]
struct Repo {
    id: i64,
    name: String,
    url: String,
    distributions: Vec<String>,
    disabled_pockets: Vec<String>,
    disabled_components: Vec<String>,
    disable_sources: bool,
    components: Vec<String>,
    arches: Vec<String>,
    key: String,
    default: bool,
    enabled: bool,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Repo {
    fn from_object(o: objects::Object) -> Repo {
        let d = &o.data;
        let text = |k: &str| {
            d.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let flag = |k: &str, dflt: bool| d.get(k).and_then(Value::as_bool).unwrap_or(dflt);
        Repo {
            id: o.id,
            url: text("url"),
            distributions: strings(d.get("distributions")),
            disabled_pockets: strings(d.get("disabled_pockets")),
            disabled_components: strings(d.get("disabled_components")),
            disable_sources: flag("disable_sources", true),
            components: strings(d.get("components")),
            arches: strings(d.get("arches")),
            key: text("key"),
            default: flag("default", false),
            enabled: flag("enabled", true),
            name: o.name,
        }
    }

    fn data(&self) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert("url".into(), json!(self.url));
        d.insert("distributions".into(), json!(self.distributions));
        d.insert("disabled_pockets".into(), json!(self.disabled_pockets));
        d.insert(
            "disabled_components".into(),
            json!(self.disabled_components),
        );
        d.insert("disable_sources".into(), json!(self.disable_sources));
        d.insert("components".into(), json!(self.components));
        d.insert("arches".into(), json!(self.arches));
        d.insert("key".into(), json!(self.key));
        d.insert("default".into(), json!(self.default));
        d.insert("enabled".into(), json!(self.enabled));
        d
    }

    /// MAAS's fields for a repository.
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "distributions": self.distributions,
            "disabled_pockets": self.disabled_pockets,
            "disabled_components": self.disabled_components,
            "disable_sources": self.disable_sources,
            "components": self.components,
            "arches": self.arches,
            "key": self.key,
            "enabled": self.enabled,
            "resource_uri": format!("/MAAS/api/2.0/package-repositories/{}/", self.id),
        })
    }
}

fn all(conn: &mut DbConn) -> crate::Result<Vec<Repo>> {
    Ok(objects::list(conn, KIND)?
        .into_iter()
        .map(Repo::from_object)
        .collect())
}

/// Creates the Ubuntu archive and ports archive a fresh MAAS has.
pub fn ensure_defaults(conn: &mut DbConn) -> crate::Result<()> {
    let have = all(conn)?;
    for (name, url, arches) in [
        (MAIN, "http://archive.ubuntu.com/ubuntu", &MAIN_ARCHES[..]),
        (
            PORTS,
            "http://ports.ubuntu.com/ubuntu-ports",
            &PORTS_ARCHES[..],
        ),
    ] {
        if have.iter().any(|r| r.name == name) {
            continue;
        }
        let r = Repo {
            id: 0,
            name: name.into(),
            url: url.into(),
            distributions: vec![],
            disabled_pockets: vec![],
            disabled_components: vec![],
            disable_sources: true,
            components: vec![],
            arches: arches.iter().map(|a| (*a).to_owned()).collect(),
            key: String::new(),
            default: true,
            enabled: true,
        };
        objects::insert(conn, KIND, name, &r.data())?;
    }
    Ok(())
}

/// The repository named by the path: an id or a name (MAAS's specifiers).
fn by_path(c: &mut Call<'_>) -> Result<Repo, ApiError> {
    let spec = c.path_param(0).to_owned();
    all(c.conn)?
        .into_iter()
        .find(|r| r.id.to_string() == spec || r.name == spec)
        .ok_or_else(|| ApiError::not_found("No PackageRepository matches the given query."))
}

/// A list parameter as MAAS's forms take it: repeated and/or
/// comma-separated; `""`, `None` and `[]` reset it.
fn list_param(c: &Call<'_>, key: &str) -> Option<Vec<String>> {
    if !c.params.has(key) {
        return None;
    }
    let v: Vec<String> = c
        .params
        .get_all(key)
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .collect();
    if v.is_empty() || v == [""] || v == ["None"] || v == ["[]"] {
        return Some(vec![]);
    }
    Some(v.into_iter().filter(|s| !s.is_empty()).collect())
}

/// MAAS's `URLOrPPAField`: an http(s)/ftp URL with a host, or `ppa:owner/name`.
fn valid_url(u: &str) -> bool {
    if let Some(ppa) = u.strip_prefix("ppa:") {
        let mut parts = ppa.split('/');
        let ok = |s: Option<&str>| {
            s.is_some_and(|s| {
                !s.is_empty()
                    && s.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "-._+".contains(ch))
            })
        };
        return ok(parts.next()) && ok(parts.next()) && parts.next().is_none();
    }
    url::Url::parse(u).is_ok_and(|p| {
        matches!(p.scheme(), "http" | "https" | "ftp" | "ftps") && p.host_str().is_some()
    })
}

/// 400 on `field` for the first of `values` outside `allowed`, in MAAS's
/// words for an archive `what` (pocket, component) that cannot be disabled.
fn only_disable(
    field: &str,
    values: &[String],
    allowed: &[&str],
    what: &str,
) -> Result<(), ApiError> {
    match values.iter().find(|v| !allowed.contains(&v.as_str())) {
        Some(bad) => Err(ApiError::field(
            field,
            format!(
                "'{bad}' is not a valid Ubuntu archive {what}. You can only disable {}.",
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// Applies the form fields of a create or an update to `r`, as MAAS's
/// `PackageRepositoryForm` checks them.
fn apply_form(c: &mut Call<'_>, r: &mut Repo, creating: bool) -> Result<(), ApiError> {
    if let Some(name) = c.params.get("name").map(|s| s.trim().to_owned()) {
        r.name = name;
    }
    if r.name.is_empty() {
        return Err(ApiError::field("name", "This field is required."));
    }
    if r.name.chars().count() > NAME_MAX {
        return Err(ApiError::field(
            "name",
            format!("Ensure this value has at most {NAME_MAX} characters."),
        ));
    }
    let taken = all(c.conn)?
        .iter()
        .any(|o| o.name == r.name && o.id != r.id);
    if taken {
        return Err(ApiError::field(
            "name",
            "Package repository with this Name already exists.",
        ));
    }
    if let Some(url) = c.params.get("url").map(|s| s.trim().to_owned()) {
        r.url = url;
    }
    if r.url.is_empty() {
        return Err(ApiError::field("url", "This field is required."));
    }
    if !valid_url(&r.url) {
        return Err(ApiError::field(
            "url",
            "Enter a valid repository URL or PPA location.",
        ));
    }
    if let Some(d) = list_param(c, "distributions") {
        r.distributions = d;
    }
    if let Some(p) = list_param(c, "disabled_pockets") {
        only_disable("disabled_pockets", &p, &POCKETS_TO_DISABLE, "pocket")?;
        r.disabled_pockets = p;
    }
    if let Some(dc) = list_param(c, "disabled_components") {
        if !r.default && !dc.is_empty() {
            return Err(ApiError::field(
                "disabled_components",
                "This is a custom repository. Please update 'components' instead.",
            ));
        }
        only_disable(
            "disabled_components",
            &dc,
            &COMPONENTS_TO_DISABLE,
            "component",
        )?;
        r.disabled_components = dc;
    }
    if let Some(comps) = list_param(c, "components") {
        if r.default && !comps.is_empty() {
            return Err(ApiError::field(
                "components",
                "This is a default Ubuntu repository. Please update 'disabled_components' instead.",
            ));
        }
        r.components = comps;
    }
    if let Some(a) = list_param(c, "arches") {
        let known: Vec<&str> = MAIN_ARCHES.iter().chain(&PORTS_ARCHES).copied().collect();
        if let Some(bad) = a.iter().find(|x| !known.contains(&x.as_str())) {
            let mut k = known.clone();
            k.sort_unstable();
            return Err(ApiError::field(
                "arches",
                format!(
                    "'{bad}' is not a valid architecture. Known architectures: {}",
                    k.join(", ")
                ),
            ));
        }
        r.arches = a;
    }
    if r.arches.is_empty() {
        let dflt: &[&str] = if r.name == PORTS {
            &PORTS_ARCHES
        } else {
            &MAIN_ARCHES
        };
        r.arches = dflt.iter().map(|a| (*a).to_owned()).collect();
    }
    if let Some(k) = c.params.get("key") {
        r.key = k;
    }
    if let Some(b) = c.params.bool("disable_sources")? {
        r.disable_sources = b;
    }
    if let Some(b) = c.params.bool("enabled")? {
        r.enabled = b;
    } else if creating {
        r.enabled = true;
    }
    if r.default && !r.enabled {
        return Err(ApiError::field(
            "__all__",
            "Default repositories may not be disabled.",
        ));
    }
    Ok(())
}

/// `GET package-repositories/`.
pub fn list(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    Ok(Reply::Json(all(c.conn)?.iter().map(Repo::json).collect()))
}

/// `POST package-repositories/` (admin).
pub fn create(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let mut r = Repo {
        id: 0,
        name: String::new(),
        url: String::new(),
        distributions: vec![],
        disabled_pockets: vec![],
        disabled_components: vec![],
        disable_sources: true,
        components: vec![],
        arches: vec![],
        key: String::new(),
        default: false,
        enabled: true,
    };
    apply_form(c, &mut r, true)?;
    let o = objects::insert(c.conn, KIND, &r.name, &r.data())?;
    Ok(Reply::Json(Repo::from_object(o).json()))
}

/// `GET package-repositories/{id}/`.
pub fn read(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.user()?;
    Ok(Reply::Json(by_path(c)?.json()))
}

/// `PUT package-repositories/{id}/` (admin): the fields given change.
pub fn update(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let mut r = by_path(c)?;
    apply_form(c, &mut r, false)?;
    let o = objects::Object {
        id: r.id,
        name: r.name.clone(),
        data: r.data(),
    };
    objects::update(c.conn, KIND, &o)?;
    Ok(Reply::Json(r.json()))
}

/// `DELETE package-repositories/{id}/` (admin); not the default archives.
pub fn delete(c: &mut Call<'_>) -> Result<Reply, ApiError> {
    c.admin()?;
    let r = by_path(c)?;
    if r.default {
        return Err(ApiError::bad_request(
            "Cannot delete default Ubuntu archives.",
        ));
    }
    objects::delete(c.conn, KIND, r.id)?;
    Ok(Reply::NoContent)
}

/// Whether `name` is one of the settings that are the default archives'
/// URLs (`main_archive`, `ports_archive`).
pub fn is_archive_setting(name: &str) -> bool {
    name == MAIN || name == PORTS
}

/// `get_config` of `main_archive` / `ports_archive`: the default
/// repository's URL; `None` for any other name.
pub fn archive_url(conn: &mut DbConn, name: &str) -> Result<Option<String>, ApiError> {
    if !is_archive_setting(name) {
        return Ok(None);
    }
    Ok(all(conn)?
        .into_iter()
        .find(|r| r.default && r.name == name)
        .map(|r| r.url))
}

/// `set_config` of `main_archive` / `ports_archive`: sets the default
/// repository's URL (400 for a bad one, as MAAS's form).
pub fn set_archive_url(conn: &mut DbConn, name: &str, url: &str) -> Result<(), ApiError> {
    if !valid_url(url) || url.starts_with("ppa:") {
        return Err(ApiError::field("value", "Enter a valid URL."));
    }
    let Some(mut r) = all(conn)?.into_iter().find(|r| r.default && r.name == name) else {
        return Err(ApiError::field(
            "name",
            format!("{name} is not a valid config setting."),
        ));
    };
    r.url = url.to_owned();
    let o = objects::Object {
        id: r.id,
        name: r.name.clone(),
        data: r.data(),
    };
    objects::update(conn, KIND, &o)?;
    Ok(())
}

/// A text setting, `None` when unset or blank.
fn config_text(conn: &mut DbConn, name: &str) -> crate::Result<Option<String>> {
    let v = super::resources::config_str(conn, name)?;
    Ok(Some(v.trim().to_owned()).filter(|v| !v.is_empty()))
}

/// A repository's name as MAAS makes it into an `apt.sources` key (and so
/// the node's list file name).
fn source_name(r: &Repo) -> String {
    let clean: String = r
        .name
        .chars()
        .filter(|ch| !"'!@#$[]{}".contains(*ch))
        .collect();
    format!("{clean}_{}", r.id)
        .trim()
        .replace(' ', "_")
        .to_lowercase()
}

/// The `deb` lines (or PPA) of an additional repository, as MAAS writes them.
fn source_line(r: &Repo) -> String {
    if r.url.starts_with("ppa:") {
        return r.url.clone();
    }
    if r.url.contains("ppa.launchpad.net") {
        return format!("deb {} $RELEASE main", r.url);
    }
    let comps = if r.components.is_empty() {
        "main".to_owned()
    } else {
        r.components.join(" ")
    };
    if r.distributions.is_empty() {
        format!("deb {} $RELEASE {comps}", r.url)
    } else {
        r.distributions
            .iter()
            .map(|d| format!("deb {} {d} {comps}", r.url))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The APT settings for a machine running `osystem` on `arch` (`amd64`):
/// the proxy from `http_proxy` while `enable_http_proxy` is on (MAAS would
/// otherwise point at its own proxy on the rack, which maasd does not run);
/// for Ubuntu, the default archives, their disabled pockets and components,
/// and the enabled additional repositories of the architecture. Other
/// systems keep their image's sources.
pub fn apt_for(conn: &mut DbConn, osystem: &str, arch: &str) -> crate::Result<AptConfig> {
    let mut apt = AptConfig::default();
    if super::resources::config_bool(conn, "enable_http_proxy", true)? {
        apt.proxy = config_text(conn, "http_proxy")?;
    }
    if !(osystem.is_empty() || osystem == "ubuntu") {
        return Ok(apt);
    }
    let repos: Vec<Repo> = all(conn)?.into_iter().filter(|r| r.enabled).collect();
    let default_for = |arches: &[&str]| {
        repos
            .iter()
            .find(|r| r.default && r.arches.iter().any(|a| arches.contains(&a.as_str())))
    };
    let Some(main) = default_for(&MAIN_ARCHES) else {
        return Ok(apt);
    };
    apt.archive = main.url.clone();
    apt.ports_archive = default_for(&PORTS_ARCHES)
        .map(|r| r.url.clone())
        .unwrap_or_default();
    // The pockets, components and key of the archive this machine uses.
    let own = if PORTS_ARCHES.contains(&arch) {
        default_for(&PORTS_ARCHES).unwrap_or(main)
    } else {
        main
    };
    apt.disabled_pockets = own.disabled_pockets.clone();
    apt.disabled_components = own.disabled_components.clone();
    apt.archive_key = (!own.key.is_empty()).then(|| own.key.clone());
    apt.sources = repos
        .iter()
        .filter(|r| !r.default && (arch.is_empty() || r.arches.iter().any(|a| a == arch)))
        .map(|r| AptSource {
            name: source_name(r),
            source: source_line(r),
            key: (!r.key.is_empty()).then(|| r.key.clone()),
        })
        .collect();
    Ok(apt)
}

/// [`apt_for`] a machine deployed with its `osystem` and architecture.
pub fn apt_for_machine(conn: &mut DbConn, m: &maas_core::Machine) -> crate::Result<AptConfig> {
    let arch = m.architecture.split('/').next().unwrap_or_default();
    apt_for(conn, &m.osystem, arch)
}

/// [`apt_for`] the ephemeral environment (enlistment, commissioning, the
/// installer): the `commissioning_osystem`.
pub fn apt_for_ephemeral(conn: &mut DbConn, arch: &str) -> crate::Result<AptConfig> {
    let os = config_text(conn, "commissioning_osystem")?.unwrap_or_else(|| "ubuntu".into());
    apt_for(conn, &os, arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str, url: &str) -> Repo {
        Repo {
            id: 7,
            name: name.into(),
            url: url.into(),
            distributions: vec![],
            disabled_pockets: vec![],
            disabled_components: vec![],
            disable_sources: true,
            components: vec![],
            arches: vec!["amd64".into()],
            key: String::new(),
            default: false,
            enabled: true,
        }
    }

    #[test]
    fn urls_and_ppas() {
        for ok in [
            "http://mirror.example/ubuntu",
            "https://repo.example:8443/x",
            "ppa:owner/name",
            "ppa:maas/3.5",
        ] {
            assert!(valid_url(ok), "{ok}");
        }
        for bad in [
            "",
            "mirror.example/ubuntu",
            "file:///srv/ubuntu",
            "ppa:owner",
            "ppa:a/b/c",
            "http://",
        ] {
            assert!(!valid_url(bad), "{bad}");
        }
    }

    #[test]
    fn source_lines_as_maas_writes_them() {
        let mut r = repo("My Tools!", "http://repo.example/tools");
        assert_eq!(source_name(&r), "my_tools_7");
        assert_eq!(
            source_line(&r),
            "deb http://repo.example/tools $RELEASE main"
        );
        r.components = vec!["main".into(), "extra".into()];
        r.distributions = vec!["stable".into(), "testing".into()];
        assert_eq!(
            source_line(&r),
            "deb http://repo.example/tools stable main extra\ndeb http://repo.example/tools testing main extra"
        );
        assert_eq!(source_line(&repo("p", "ppa:o/n")), "ppa:o/n");
        assert_eq!(
            source_line(&repo("p", "http://ppa.launchpad.net/o/n/ubuntu")),
            "deb http://ppa.launchpad.net/o/n/ubuntu $RELEASE main"
        );
    }
}
