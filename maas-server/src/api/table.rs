//! The route table: every resource, its handlers and actions, with MAAS's
//! handler names (python-libmaas binds its object classes by these names).

use axum::http::Method;

use super::{
    ActionSpec, HandlerFn, HandlerSpec, ResourceSpec, boot, controllers, files, links, machine_ops,
    machines, network, repos, resources, spaces, users,
};

fn action(
    name: &'static str,
    method: Method,
    op: Option<&'static str>,
    doc: &'static str,
    f: HandlerFn,
) -> ActionSpec {
    ActionSpec {
        name,
        method,
        op,
        doc,
        f,
    }
}

/// `GET` without op.
fn read(doc: &'static str, f: HandlerFn) -> ActionSpec {
    action("read", Method::GET, None, doc, f)
}
/// `POST` without op.
fn create(doc: &'static str, f: HandlerFn) -> ActionSpec {
    action("create", Method::POST, None, doc, f)
}
/// `PUT` without op.
fn update(doc: &'static str, f: HandlerFn) -> ActionSpec {
    action("update", Method::PUT, None, doc, f)
}
/// `DELETE` without op.
fn delete(doc: &'static str, f: HandlerFn) -> ActionSpec {
    action("delete", Method::DELETE, None, doc, f)
}
/// `GET ?op=`.
fn get_op(op: &'static str, doc: &'static str, f: HandlerFn) -> ActionSpec {
    action(op, Method::GET, Some(op), doc, f)
}
/// `POST ?op=`.
fn post_op(op: &'static str, doc: &'static str, f: HandlerFn) -> ActionSpec {
    action(op, Method::POST, Some(op), doc, f)
}

struct Builder(ResourceSpec);

fn res(name: &'static str, path: &'static str) -> Builder {
    let params = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect();
    Builder(ResourceSpec {
        name,
        path,
        params,
        anon: None,
        auth: None,
        admin_restricted: false,
    })
}

impl Builder {
    fn anon(mut self, doc: &'static str, actions: Vec<ActionSpec>) -> Self {
        self.0.anon = Some(HandlerSpec {
            name: format!("Anon{}", self.0.name),
            doc,
            actions,
        });
        self
    }
    /// Superusers only, as MAAS's `AdminRestrictedResource`.
    fn admin_only(mut self) -> Self {
        self.0.admin_restricted = true;
        self
    }
    fn auth(mut self, doc: &'static str, actions: Vec<ActionSpec>) -> Self {
        self.0.auth = Some(HandlerSpec {
            name: self.0.name.to_owned(),
            doc,
            actions,
        });
        self
    }
}

/// Every resource, in match order.
pub fn resources() -> Vec<ResourceSpec> {
    let v =
        vec![
        res("VersionHandler", "/MAAS/api/2.0/version/").anon(
            "Information about this MAAS instance.",
            vec![read("Version and capabilities.", resources::version)],
        ),
        // --- users and credentials
        res("UsersHandler", "/MAAS/api/2.0/users/").auth(
            "Manage the user accounts of this MAAS.",
            vec![
                read("List users.", users::list),
                create("Create a user (admin).", users::create),
                get_op("whoami", "The user making the request.", users::whoami),
            ],
        ),
        res("UserHandler", "/MAAS/api/2.0/users/{username}/").auth(
            "Manage a user account.",
            vec![
                read("Read a user.", users::read),
                delete("Delete a user (admin).", users::delete),
            ],
        ),
        res("AccountHandler", "/MAAS/api/2.0/account/").auth(
            "Manage the current logged-in user.",
            vec![
                post_op(
                    "create_authorisation_token",
                    "Create an API token.",
                    users::create_token,
                ),
                post_op(
                    "delete_authorisation_token",
                    "Delete an API token.",
                    users::delete_token,
                ),
                get_op(
                    "list_authorisation_tokens",
                    "List API tokens.",
                    users::list_tokens,
                ),
                post_op(
                    "update_token_name",
                    "Rename an API token.",
                    users::rename_token,
                ),
            ],
        ),
        res("SSHKeysHandler", "/MAAS/api/2.0/account/prefs/sshkeys/").auth(
            "Manage the SSH keys of the logged-in user.",
            vec![
                read("List SSH keys.", users::sshkeys_list),
                create("Add an SSH key.", users::sshkeys_create),
                post_op(
                    "import",
                    "Import keys from Launchpad or GitHub.",
                    users::sshkeys_import,
                ),
            ],
        ),
        res("SSHKeyHandler", "/MAAS/api/2.0/account/prefs/sshkeys/{id}/").auth(
            "Manage an SSH key.",
            vec![
                read("Read an SSH key.", users::sshkey_read),
                delete("Delete an SSH key.", users::sshkey_delete),
            ],
        ),
        // --- organisation
        res("FilesHandler", "/MAAS/api/2.0/files/")
            .anon(
                "Read a stored file by its key, without credentials.",
                vec![get_op(
                    "get_by_key",
                    "A file's content by its key.",
                    files::get_by_key,
                )],
            )
            .auth(
                "Manage the caller's stored files.",
                vec![
                    read("List the caller's files (prefix filter).", files::list),
                    create("Store a file (filename, file).", files::add),
                    delete("Delete the caller's file named by filename.", files::delete_by_param),
                    get_op("get", "The caller's file's content by name.", files::get),
                    get_op("get_by_key", "A file's content by its key.", files::get_by_key),
                ],
            ),
        res("FileHandler", "/MAAS/api/2.0/files/{filename}/").auth(
            "Manage one of the caller's stored files.",
            vec![
                read("The file, content in base64.", files::read),
                delete("Delete the file.", files::delete),
            ],
        ),
        res("PackageRepositoriesHandler", "/MAAS/api/2.0/package-repositories/").auth(
            "Manage the package repositories machines are deployed with.",
            vec![
                read("List package repositories.", repos::list),
                create("Create a package repository (admin).", repos::create),
            ],
        ),
        res(
            "PackageRepositoryHandler",
            "/MAAS/api/2.0/package-repositories/{id}/",
        )
        .auth(
            "Manage a package repository.",
            vec![
                read("Read a package repository.", repos::read),
                update("Update a package repository (admin).", repos::update),
                delete("Delete a package repository (admin).", repos::delete),
            ],
        ),
        res("ZonesHandler", "/MAAS/api/2.0/zones/").auth(
            "Manage physical zones.",
            vec![
                read("List zones.", resources::zones_list),
                create("Create a zone (admin).", resources::zones_create),
            ],
        ),
        res("ZoneHandler", "/MAAS/api/2.0/zones/{name}/").auth(
            "Manage a physical zone.",
            vec![
                read("Read a zone.", resources::zone_read),
                update("Update a zone (admin).", resources::zone_update),
                delete("Delete a zone (admin).", resources::zone_delete),
            ],
        ),
        res("ResourcePoolsHandler", "/MAAS/api/2.0/resourcepools/").auth(
            "Manage resource pools.",
            vec![
                read("List resource pools.", resources::pools_list),
                create("Create a resource pool (admin).", resources::pools_create),
            ],
        ),
        res("ResourcePoolHandler", "/MAAS/api/2.0/resourcepool/{id}/").auth(
            "Manage a resource pool.",
            vec![
                read("Read a resource pool.", resources::pool_read),
                update("Update a resource pool (admin).", resources::pool_update),
                delete("Delete a resource pool (admin).", resources::pool_delete),
            ],
        ),
        res("TagsHandler", "/MAAS/api/2.0/tags/").auth(
            "Manage all tags known to MAAS.",
            vec![
                read("List tags.", resources::tags_list),
                create("Create a tag (admin).", resources::tags_create),
            ],
        ),
        res("TagHandler", "/MAAS/api/2.0/tags/{name}/").auth(
            "Manage a tag.",
            vec![
                read("Read a tag.", resources::tag_read),
                update("Update a tag (admin).", resources::tag_update),
                delete("Delete a tag (admin).", resources::tag_delete),
                get_op(
                    "machines",
                    "Machines with this tag.",
                    resources::tag_machines,
                ),
                get_op("nodes", "Nodes with this tag.", resources::tag_machines),
                post_op(
                    "update_nodes",
                    "Add or remove nodes (admin).",
                    resources::tag_update_nodes,
                ),
                post_op(
                    "rebuild",
                    "Re-evaluate the tag definition (admin).",
                    resources::tag_rebuild,
                ),
            ],
        ),
        res("DomainsHandler", "/MAAS/api/2.0/domains/").auth(
            "Manage domains.",
            vec![
                read("List domains.", resources::domains_list),
                create("Create a domain (admin).", resources::domains_create),
            ],
        ),
        res("DomainHandler", "/MAAS/api/2.0/domains/{id}/").auth(
            "Manage a domain.",
            vec![
                read("Read a domain.", resources::domain_read),
                update("Update a domain (admin).", resources::domain_update),
                delete("Delete a domain (admin).", resources::domain_delete),
                post_op(
                    "set_default",
                    "Make this the default domain (admin).",
                    resources::domain_set_default,
                ),
            ],
        ),
        // --- networking
        res("FabricsHandler", "/MAAS/api/2.0/fabrics/").auth(
            "Manage fabrics.",
            vec![
                read("List fabrics.", network::fabrics_list),
                create("Create a fabric (admin).", network::fabrics_create),
            ],
        ),
        res("FabricHandler", "/MAAS/api/2.0/fabrics/{id}/").auth(
            "Manage a fabric.",
            vec![
                read("Read a fabric.", network::fabric_read),
                update("Update a fabric (admin).", network::fabric_update),
                delete("Delete a fabric (admin).", network::fabric_delete),
            ],
        ),
        res("VlansHandler", "/MAAS/api/2.0/fabrics/{fabric_id}/vlans/").auth(
            "Manage VLANs on a fabric.",
            vec![
                read("List VLANs.", network::vlans_list),
                create("Create a VLAN (admin).", network::vlans_create),
            ],
        ),
        res(
            "VlanHandler",
            "/MAAS/api/2.0/fabrics/{fabric_id}/vlans/{vid}/",
        )
        .auth(
            "Manage a VLAN on a fabric.",
            vec![
                read("Read a VLAN.", network::vlan_read),
                update("Update a VLAN (admin).", network::vlan_update),
                delete("Delete a VLAN (admin).", network::vlan_delete),
            ],
        ),
        res("SubnetsHandler", "/MAAS/api/2.0/subnets/").auth(
            "Manage subnets.",
            vec![
                read("List subnets.", network::subnets_list),
                create("Create a subnet (admin).", network::subnets_create),
            ],
        ),
        res("SubnetHandler", "/MAAS/api/2.0/subnets/{id}/").auth(
            "Manage a subnet.",
            vec![
                read("Read a subnet.", network::subnet_read),
                update("Update a subnet (admin).", network::subnet_update),
                delete("Delete a subnet (admin).", network::subnet_delete),
            ],
        ),
        res("IPRangesHandler", "/MAAS/api/2.0/ipranges/").auth(
            "Manage IP ranges.",
            vec![
                read("List IP ranges.", network::ipranges_list),
                create("Create an IP range.", network::ipranges_create),
            ],
        ),
        res("IPRangeHandler", "/MAAS/api/2.0/ipranges/{id}/").auth(
            "Manage an IP range.",
            vec![
                read("Read an IP range.", network::iprange_read),
                update("Update an IP range.", network::iprange_update),
                delete("Delete an IP range.", network::iprange_delete),
            ],
        ),
        res("SpacesHandler", "/MAAS/api/2.0/spaces/").auth(
            "Manage spaces.",
            vec![
                read("List all spaces.", spaces::spaces_list),
                create("Create a space (admin).", spaces::spaces_create),
            ],
        ),
        res("SpaceHandler", "/MAAS/api/2.0/spaces/{id}/").auth(
            "Manage space.",
            vec![
                read("Read a space.", spaces::space_read),
                update("Update a space (admin).", spaces::space_update),
                delete("Delete a space (admin).", spaces::space_delete),
            ],
        ),
        res("StaticRoutesHandler", "/MAAS/api/2.0/static-routes/").auth(
            "Manage static routes.",
            vec![
                read("List all static routes.", spaces::routes_list),
                create("Create a static route (admin).", spaces::routes_create),
            ],
        ),
        res("StaticRouteHandler", "/MAAS/api/2.0/static-routes/{id}/").auth(
            "Manage static route.",
            vec![
                read("Read a static route.", spaces::route_read),
                update("Update a static route (admin).", spaces::route_update),
                delete("Delete a static route (admin).", spaces::route_delete),
            ],
        ),
        // --- images
        res("BootSourcesHandler", "/MAAS/api/2.0/boot-sources/").admin_only().auth(
            "Manage the boot sources.",
            vec![
                read("List boot sources.", boot::sources_list),
                create("Create a boot source (admin).", boot::sources_create),
            ],
        ),
        res("BootSourceHandler", "/MAAS/api/2.0/boot-sources/{id}/").admin_only().auth(
            "Manage a boot source.",
            vec![
                read("Read a boot source.", boot::source_read),
                update("Update a boot source (admin).", boot::source_update),
                delete("Delete a boot source (admin).", boot::source_delete),
            ],
        ),
        res(
            "BootSourceSelectionsHandler",
            "/MAAS/api/2.0/boot-sources/{boot_source_id}/selections/",
        )
        .admin_only()
        .auth(
            "Manage the collection of boot source selections.",
            vec![
                read("List selections.", boot::selections_list),
                create("Create a selection (admin).", boot::selections_create),
            ],
        ),
        res(
            "BootSourceSelectionHandler",
            "/MAAS/api/2.0/boot-sources/{boot_source_id}/selections/{id}/",
        )
        .admin_only()
        .auth(
            "Manage a boot source selection.",
            vec![
                read("Read a selection.", boot::selection_read),
                update("Update a selection (admin).", boot::selection_update),
                delete("Delete a selection (admin).", boot::selection_delete),
            ],
        ),
        res("BootResourcesHandler", "/MAAS/api/2.0/boot-resources/").auth(
            "Manage the boot resources.",
            vec![
                read("List boot resources.", boot::resources_list),
                create("Upload a boot resource (admin).", boot::resources_create),
                get_op(
                    "is_importing",
                    "Whether an import is running.",
                    boot::is_importing,
                ),
                post_op(
                    "import",
                    "Import the selected boot resources (admin).",
                    boot::import,
                ),
                post_op(
                    "stop_import",
                    "Stop a running import (admin).",
                    boot::stop_import,
                ),
                get_op(
                    "import_progress",
                    "The running or last import's files and bytes, done and total (beyond MAAS).",
                    boot::import_progress,
                ),
            ],
        ),
        res("BootResourceHandler", "/MAAS/api/2.0/boot-resources/{id}/").auth(
            "Manage a boot resource.",
            vec![
                read("Read a boot resource with its sets.", boot::resource_read),
                delete("Delete a boot resource (admin).", boot::resource_delete),
            ],
        ),
        res(
            "BootResourceFileUploadHandler",
            "/MAAS/api/2.0/boot-resources/{id}/upload/{file_id}/",
        )
        .auth(
            "Upload a boot resource file in chunks.",
            vec![update("Upload a chunk (admin).", boot::upload_chunk)],
        ),
        // --- scripts and results (the metadata module owns them)
        res("ScriptsHandler", "/MAAS/api/2.0/scripts/").auth(
            "Manage custom commissioning and testing scripts.",
            vec![
                read(
                    "List scripts (type filters).",
                    crate::metadata::rest::scripts_list,
                ),
                create(
                    "Upload a script (admin).",
                    crate::metadata::rest::scripts_create,
                ),
            ],
        ),
        res("ScriptHandler", "/MAAS/api/2.0/scripts/{name}/").auth(
            "Manage a custom script.",
            vec![
                read("Read a script.", crate::metadata::rest::script_read),
                delete(
                    "Delete a script (admin).",
                    crate::metadata::rest::script_delete,
                ),
                get_op(
                    "download",
                    "Download the script.",
                    crate::metadata::rest::script_download,
                ),
            ],
        ),
        res(
            "NodeScriptResultsHandler",
            "/MAAS/api/2.0/nodes/{system_id}/results/",
        )
        .auth(
            "Read the script results of a node.",
            vec![read(
                "List result sets (type filters).",
                crate::metadata::rest::node_results,
            )],
        ),
        res(
            "NodeScriptResultHandler",
            "/MAAS/api/2.0/nodes/{system_id}/results/{id}/",
        )
        .auth(
            "Read or delete one script result set.",
            vec![
                read(
                    "One result set (an id or current-commissioning, -testing, -installation).",
                    crate::metadata::rest::node_result,
                ),
                delete(
                    "Delete a result set (admin).",
                    crate::metadata::rest::node_result_delete,
                ),
            ],
        ),
        // --- events and settings
        res("EventsHandler", "/MAAS/api/2.0/events/").auth(
            "Retrieve filtered node events.",
            vec![get_op(
                "query",
                "List events, newest first.",
                resources::events_query,
            )],
        ),
        res("MaasHandler", "/MAAS/api/2.0/maas/").auth(
            "Manage the MAAS server.",
            vec![
                get_op(
                    "get_config",
                    "Read a configuration value.",
                    resources::get_config,
                ),
                post_op(
                    "set_config",
                    "Set a configuration value (admin).",
                    resources::set_config,
                ),
            ],
        ),
        // --- machines and nodes
        res("MachinesHandler", "/MAAS/api/2.0/machines/")
            .anon(
                "Anonymous access to machines.",
                vec![
                    create("Enlist a machine.", machines::anon_create),
                    get_op(
                        "is_registered",
                        "Whether a MAC address is registered.",
                        machines::is_registered,
                    ),
                    get_op(
                        "is_action_in_progress",
                        "Whether an action is in progress for a MAC.",
                        machines::is_action_in_progress,
                    ),
                    post_op(
                        "accept",
                        "Accept enlisted machines (needs a login).",
                        machine_ops::anon_accept,
                    ),
                ],
            )
            .auth(
                "Manage the collection of all the machines in MAAS.",
                vec![
                    read("List machines, with filters.", machines::list),
                    create("Create a machine.", machines::create),
                    post_op(
                        "allocate",
                        "Allocate a Ready machine matching the constraints.",
                        machine_ops::allocate,
                    ),
                    post_op(
                        "release",
                        "Release several machines.",
                        machine_ops::release_many,
                    ),
                    post_op(
                        "accept",
                        "Accept enlisted machines (admin).",
                        machine_ops::accept,
                    ),
                    post_op(
                        "accept_all",
                        "Accept every enlisted machine (admin).",
                        machine_ops::accept_all,
                    ),
                    get_op(
                        "list_allocated",
                        "Machines allocated to the caller.",
                        machines::list_allocated,
                    ),
                    get_op(
                        "power_parameters",
                        "Power parameters of machines (admin).",
                        machines::power_parameters_many,
                    ),
                    get_op(
                        "is_registered",
                        "Whether a MAC address is registered.",
                        machines::is_registered,
                    ),
                    post_op(
                        "clone",
                        "Clone storage and/or interfaces to destinations (admin).",
                        machine_ops::clone,
                    ),
                    post_op(
                        "set_zone",
                        "Move machines to a zone (admin).",
                        machines::set_zone,
                    ),
                ],
            ),
        res("MachineHandler", "/MAAS/api/2.0/machines/{system_id}/").auth(
            "Manage an individual machine.",
            vec![
                read("Read a machine.", machines::read),
                update("Update a machine.", machines::update),
                delete("Delete a machine.", machines::delete),
                post_op("deploy", "Deploy an operating system.", machine_ops::deploy),
                post_op("release", "Release the machine.", machine_ops::release),
                post_op(
                    "commission",
                    "Commission the machine.",
                    machine_ops::commission,
                ),
                post_op("test", "Run tests on the machine.", machine_ops::test),
                post_op("abort", "Abort the current operation.", machine_ops::abort),
                post_op(
                    "mark_broken",
                    "Mark the machine broken.",
                    machine_ops::mark_broken,
                ),
                post_op(
                    "mark_fixed",
                    "Mark a broken machine fixed.",
                    machine_ops::mark_fixed,
                ),
                post_op(
                    "rescue_mode",
                    "Enter rescue mode.",
                    machine_ops::rescue_mode,
                ),
                post_op(
                    "exit_rescue_mode",
                    "Exit rescue mode.",
                    machine_ops::exit_rescue_mode,
                ),
                post_op(
                    "lock",
                    "Lock the machine against changes.",
                    machine_ops::lock,
                ),
                post_op("unlock", "Unlock the machine.", machine_ops::unlock),
                post_op("power_on", "Power the machine on.", machine_ops::power_on),
                post_op(
                    "power_off",
                    "Power the machine off.",
                    machine_ops::power_off,
                ),
                get_op(
                    "query_power_state",
                    "Query the power state.",
                    machine_ops::query_power_state,
                ),
                post_op(
                    "override_failed_testing",
                    "Ignore failed tests.",
                    machine_ops::override_failed_testing,
                ),
                post_op(
                    "set_storage_layout",
                    "Apply a storage layout.",
                    machine_ops::set_storage_layout,
                ),
                get_op(
                    "get_curtin_config",
                    "The curtin configuration.",
                    machines::get_curtin_config,
                ),
                get_op(
                    "details",
                    "Commissioning details (BSON).",
                    machines::details,
                ),
                get_op(
                    "get_token",
                    "The machine's metadata token (admin).",
                    machines::get_token,
                ),
                get_op(
                    "power_parameters",
                    "Power parameters (admin).",
                    machines::power_parameters,
                ),
                post_op(
                    "set_owner_data",
                    "Set owner data.",
                    machines::set_owner_data,
                ),
                post_op(
                    "clear_default_gateways",
                    "Clear default gateways.",
                    machines::noop_read,
                ),
                post_op(
                    "restore_default_configuration",
                    "Restore default configuration.",
                    machines::noop_read,
                ),
                post_op(
                    "restore_networking_configuration",
                    "Restore networking configuration.",
                    machines::noop_read,
                ),
                post_op(
                    "restore_storage_configuration",
                    "Restore storage configuration.",
                    machines::noop_read,
                ),
            ],
        ),
        res("NodesHandler", "/MAAS/api/2.0/nodes/").auth(
            "Manage the collection of all the nodes in MAAS.",
            vec![read(
                "List nodes: machines, then this controller.",
                controllers::nodes_list,
            )],
        ),
        res("NodeHandler", "/MAAS/api/2.0/nodes/{system_id}/").auth(
            "Manage an individual node.",
            vec![
                read("Read a node (a machine or this controller).", controllers::node_read),
                delete("Delete a node.", machines::delete),
            ],
        ),
        // --- controllers: this process is the one region and rack controller
        res("RackControllersHandler", "/MAAS/api/2.0/rackcontrollers/").auth(
            "Manage the collection of all rack controllers in MAAS.",
            vec![
                read(
                    "List rack controllers (id, hostname, domain, zone, arch, mac_address filters).",
                    controllers::racks_list,
                ),
                post_op(
                    "import_boot_images",
                    "Import the selected boot images on all rack controllers (admin).",
                    controllers::racks_import_boot_images,
                ),
                get_op(
                    "describe_power_types",
                    "The power drivers and their parameters (admin).",
                    controllers::describe_power_types,
                ),
            ],
        ),
        res(
            "RackControllerHandler",
            "/MAAS/api/2.0/rackcontrollers/{system_id}/",
        )
        .auth(
            "Manage an individual rack controller.",
            vec![
                read("Read a rack controller.", controllers::rack_read),
                post_op(
                    "import_boot_images",
                    "Import the selected boot images on this rack controller (admin).",
                    controllers::rack_import_boot_images,
                ),
                get_op(
                    "list_boot_images",
                    "The boot images the rack holds and whether they are in sync (admin).",
                    controllers::rack_list_boot_images,
                ),
            ],
        ),
        res("RegionControllersHandler", "/MAAS/api/2.0/regioncontrollers/").auth(
            "Manage the collection of all region controllers in MAAS.",
            vec![read(
                "List region controllers (id, hostname, domain, zone, arch, mac_address filters).",
                controllers::regions_list,
            )],
        ),
        res(
            "RegionControllerHandler",
            "/MAAS/api/2.0/regioncontrollers/{system_id}/",
        )
        .auth(
            "Manage an individual region controller.",
            vec![read("Read a region controller.", controllers::region_read)],
        ),
        res(
            "InterfacesHandler",
            "/MAAS/api/2.0/nodes/{system_id}/interfaces/",
        )
        .auth(
            "Manage the interfaces of a node.",
            vec![read("List interfaces.", machines::interfaces_list)],
        ),
        res(
            "InterfaceHandler",
            "/MAAS/api/2.0/nodes/{system_id}/interfaces/{id}/",
        )
        .auth(
            "Manage a node's interface.",
            vec![
                read("Read an interface.", machines::interface_read),
                post_op(
                    "link_subnet",
                    "Link the interface to a subnet: AUTO, DHCP, STATIC (ip_address or the first free one) or LINK_UP (admin).",
                    links::link_subnet,
                ),
                post_op(
                    "set_default_gateway",
                    "Make a link's subnet gateway (link_id, else the first usable) the default route (admin).",
                    links::set_default_gateway,
                ),
                post_op(
                    "unlink_subnet",
                    "Remove one of the interface's links (id) (admin).",
                    links::unlink_subnet,
                ),
            ],
        ),
        res(
            "BlockDevicesHandler",
            "/MAAS/api/2.0/nodes/{system_id}/blockdevices/",
        )
        .auth(
            "Manage the block devices of a node.",
            vec![read("List block devices.", machines::blockdevices_list)],
        ),
        res(
            "BlockDeviceHandler",
            "/MAAS/api/2.0/nodes/{system_id}/blockdevices/{id}/",
        )
        .auth(
            "Manage a block device.",
            vec![read("Read a block device.", machines::blockdevice_read)],
        ),
        res(
            "PartitionsHandler",
            "/MAAS/api/2.0/nodes/{system_id}/blockdevices/{device_id}/partitions/",
        )
        .auth(
            "Manage the partitions of a block device.",
            vec![read("List partitions.", machines::partitions_list)],
        ),
        res(
            "PartitionHandler",
            "/MAAS/api/2.0/nodes/{system_id}/blockdevices/{device_id}/partition/{id}",
        )
        .auth(
            "Manage a partition.",
            vec![read("Read a partition.", machines::partition_read)],
        ),
    ];
    v.into_iter().map(|b| b.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_names_paths_and_actions_are_unique() {
        let rs = resources();
        let mut names: Vec<&str> = rs.iter().map(|r| r.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), rs.len(), "duplicate handler name");
        for r in &rs {
            assert!(r.path.starts_with("/MAAS/api/2.0/"), "{}", r.path);
            for h in r.anon.iter().chain(r.auth.iter()) {
                let mut keys: Vec<(String, Option<&str>)> = h
                    .actions
                    .iter()
                    .map(|a| (a.method.to_string(), a.op))
                    .collect();
                let n = keys.len();
                keys.sort();
                keys.dedup();
                assert_eq!(keys.len(), n, "duplicate (method, op) in {}", h.name);
            }
        }
    }
}
