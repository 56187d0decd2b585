from typing import Any, Callable, Dict, List, Optional, Tuple

__version__: str

__all__ = [
    "BadParameter",
    "CloneError",
    "ConstraintError",
    "Forbidden",
    "InvalidTransition",
    "MaasError",
    "PowerError",
    "RenderError",
    "VerificationError",
    "__version__",
    "allocate",
    "allowed_targets",
    "apply",
    "boot_files",
    "boot_purpose",
    "can_transition",
    "create_machine",
    "decode_user_data",
    "export_transitions",
    "failure_status",
    "generate_system_id",
    "handle_event",
    "kernel_command_line",
    "match_constraints",
    "node_statuses",
    "parse_constraints",
    "parse_stream",
    "plan_clone",
    "power",
    "power_types",
    "render",
    "render_boot_config",
    "set_storage_layout",
    "sync_source",
    "validate_for_deploy",
    "validate_power_parameters",
    "verify_signed",
]

class MaasError(Exception):
    http_status: int
class InvalidTransition(MaasError): ...
class Forbidden(MaasError): ...
class BadParameter(MaasError): ...
class ConstraintError(BadParameter): ...
class CloneError(BadParameter): ...
class RenderError(BadParameter): ...
class VerificationError(MaasError): ...

class PowerError(MaasError):
    fatal: bool

def node_statuses() -> List[Tuple[int, str, str, str]]: ...
def allowed_targets(status: int) -> List[str]: ...
def can_transition(from_status: int, to_status: int) -> bool: ...
def failure_status(status: int) -> Optional[int]: ...
def export_transitions(format: str = "json") -> str: ...
def boot_purpose(machine: Optional[Dict[str, Any]] = None) -> str: ...
def apply(
    machine: Dict[str, Any],
    actor: Dict[str, Any],
    action: str,
    params: Optional[Dict[str, Any]] = None,
    now: Optional[float] = None,
    config: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]: ...
def handle_event(
    machine: Dict[str, Any],
    event: Dict[str, Any],
    now: Optional[float] = None,
    config: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]: ...
def create_machine(machine: Dict[str, Any], creator: Dict[str, Any], deployed: bool = False) -> Dict[str, Any]: ...
def generate_system_id() -> str: ...
def parse_constraints(params: Any) -> Dict[str, Any]: ...
def match_constraints(params: Any, machine: Dict[str, Any]) -> Optional[Dict[str, Any]]: ...
def allocate(params: Any, machines: List[Dict[str, Any]]) -> Optional[Tuple[str, Dict[str, Any]]]: ...
def plan_clone(
    source: Dict[str, Any],
    destinations: List[Dict[str, Any]],
    storage: bool = True,
    interfaces: bool = True,
) -> List[Dict[str, Any]]: ...
def set_storage_layout(machine: Dict[str, Any], request: Dict[str, Any]) -> Dict[str, Any]: ...
def validate_for_deploy(machine: Dict[str, Any]) -> None: ...
def render(kind: str, machine: Dict[str, Any], context: Optional[Dict[str, Any]] = None) -> str: ...
def decode_user_data(stored: str) -> bytes: ...
def render_boot_config(loader: str, params: Dict[str, Any], rack: str) -> str: ...
def kernel_command_line(params: Dict[str, Any], rack: str) -> str: ...
def verify_signed(data: bytes, keyring: Optional[bytes], name: str = "document") -> bytes: ...
def parse_stream(data: bytes, keyring: Optional[bytes], name: str = "document") -> Dict[str, Any]: ...
def sync_source(
    source: Dict[str, Any],
    store_dir: str,
    progress: Optional[Callable[[Dict[str, Any]], None]] = None,
    concurrency: int = 4,
    keep_versions: int = 2,
) -> Dict[str, Any]: ...
def boot_files(store_dir: str, os: str, arch: str, subarch: str, release: str) -> Optional[Dict[str, Any]]: ...
def power_types() -> List[Dict[str, Any]]: ...
def validate_power_parameters(power_type: str, params: Dict[str, str]) -> None: ...
def power(
    power_type: str,
    params: Dict[str, str],
    action: str,
    stop_mode: str = "hard",
    retry: bool = True,
    timeout: float = 30.0,
) -> str: ...
