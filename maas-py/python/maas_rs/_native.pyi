from typing import Any, Dict, List, Optional, Tuple

__version__: str

__all__ = [
    "BadParameter",
    "CloneError",
    "ConstraintError",
    "Forbidden",
    "InvalidTransition",
    "MaasError",
    "__version__",
    "allocate",
    "allowed_targets",
    "apply",
    "boot_purpose",
    "can_transition",
    "create_machine",
    "export_transitions",
    "failure_status",
    "generate_system_id",
    "handle_event",
    "match_constraints",
    "node_statuses",
    "parse_constraints",
    "plan_clone",
]

class MaasError(Exception):
    http_status: int
class InvalidTransition(MaasError): ...
class Forbidden(MaasError): ...
class BadParameter(MaasError): ...
class ConstraintError(BadParameter): ...
class CloneError(BadParameter): ...

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
