"""maas-rs from Python: the Rust core of maas-rs, in-process.

No server is needed to validate a life-cycle transition, match allocation
constraints or plan a clone::

    import maas_rs
    m = {"system_id": "4y3h7n", "status": maas_rs.NodeStatus.READY, "power_type": "ipmi"}
    out = maas_rs.apply(m, maas_rs.Actor("alice"), "allocate")
    assert out["status"] == maas_rs.NodeStatus.ALLOCATED

The package is ``maas_rs`` so it never clashes with python-libmaas's ``maas``.
Machines, parameters and results are plain dicts; absent machine fields take
their defaults. Errors are :class:`MaasError` subclasses carrying the HTTP
status MAAS would answer with.
"""

from __future__ import annotations

from enum import IntEnum
import asyncio
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional

from maas_rs import _native
from maas_rs._native import (
    BadParameter,
    CloneError,
    ConstraintError,
    Forbidden,
    InvalidTransition,
    MaasError,
    PowerError,
    RenderError,
    VerificationError,
    __version__,
    allocate,
    allowed_targets,
    boot_files,
    boot_purpose,
    can_transition,
    decode_user_data,
    export_transitions,
    generate_system_id,
    kernel_command_line,
    match_constraints,
    node_statuses,
    parse_constraints,
    parse_stream,
    plan_clone,
    power,
    power_types,
    render,
    render_boot_config,
    set_storage_layout,
    sync_source,
    validate_for_deploy,
    validate_power_parameters,
    verify_signed,
)

__all__ = [
    "Actor",
    "PowerError",
    "RenderError",
    "VerificationError",
    "boot_files",
    "decode_user_data",
    "kernel_command_line",
    "parse_stream",
    "power",
    "power_async",
    "power_types",
    "render",
    "render_boot_config",
    "set_storage_layout",
    "sync_source",
    "sync_source_async",
    "validate_for_deploy",
    "validate_power_parameters",
    "verify_signed",
    "BadParameter",
    "CloneError",
    "ConstraintError",
    "Forbidden",
    "InvalidTransition",
    "MaasError",
    "NodeStatus",
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
    "transition_table",
]

class NodeStatus(IntEnum):
    """MAAS's node statuses with MAAS's integers (python-libmaas compatible)."""

    NEW = 0
    COMMISSIONING = 1
    FAILED_COMMISSIONING = 2
    MISSING = 3
    READY = 4
    RESERVED = 5
    DEPLOYED = 6
    RETIRED = 7
    BROKEN = 8
    DEPLOYING = 9
    ALLOCATED = 10
    FAILED_DEPLOYMENT = 11
    RELEASING = 12
    FAILED_RELEASING = 13
    DISK_ERASING = 14
    FAILED_DISK_ERASING = 15
    RESCUE_MODE = 16
    ENTERING_RESCUE_MODE = 17
    FAILED_ENTERING_RESCUE_MODE = 18
    EXITING_RESCUE_MODE = 19
    FAILED_EXITING_RESCUE_MODE = 20
    TESTING = 21
    FAILED_TESTING = 22

    @property
    def label(self) -> str:
        """The API's ``status_name``, e.g. ``"Releasing failed"``."""
        return _LABELS[int(self)]

    @property
    def simple(self) -> str:
        """The simplified status, e.g. ``"Failed"``."""
        return _SIMPLE[int(self)]


_LABELS = {v: label for v, _, label, _ in node_statuses()}
_SIMPLE = {v: simple for v, _, _, simple in node_statuses()}


class Actor(NamedTuple):
    """Who acts: a username and whether they are a MAAS administrator."""

    username: str
    is_admin: bool = False

    def _asdict_native(self) -> Dict[str, Any]:
        return {"username": self.username, "is_admin": self.is_admin}


def _actor(actor: Any) -> Dict[str, Any]:
    if isinstance(actor, Actor):
        return actor._asdict_native()
    return dict(actor)


def apply(
    machine: Mapping[str, Any],
    actor: Any,
    action: str,
    params: Optional[Mapping[str, Any]] = None,
    now: Optional[float] = None,
    config: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """Apply a user action (``commission``, ``allocate``, ``deploy``, ``release``,
    ``mark_broken``, ``lock``, …) with MAAS's rules.

    Returns ``{"status", "via", "effects", "event", "machine"}`` or raises
    :class:`InvalidTransition` (409), :class:`Forbidden` (403) or
    :class:`BadParameter` (400). ``now`` is seconds since the epoch.
    """
    return _native.apply(dict(machine), _actor(actor), action, dict(params or {}), now, config)


def handle_event(
    machine: Mapping[str, Any],
    event: Mapping[str, Any],
    now: Optional[float] = None,
    config: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """Apply something a machine or monitor reported. Event shapes::

        {"event": "signal", "status": "OK", "error": None, "script_failed": False}
        {"event": "finish", "name": "modules-final", "result": "SUCCESS", "description": ""}
        {"event": "progress", "name": "cmd-install/stage-early"}
        {"event": "user_data_fetched"}
        {"event": "power_observed", "state": "off"}
        {"event": "deadline_expired"}

    Same result shape and errors as :func:`apply`.
    """
    return _native.handle_event(dict(machine), dict(event), now, config)


def create_machine(machine: Mapping[str, Any], creator: Any, deployed: bool = False) -> Dict[str, Any]:
    """A new machine record: NEW, or DEPLOYED owned by ``creator`` when ``deployed``."""
    return _native.create_machine(dict(machine), _actor(creator), deployed)


def failure_status(status: int) -> Optional[NodeStatus]:
    """The failed status an operation in progress falls into, or None."""
    f = _native.failure_status(int(status))
    return None if f is None else NodeStatus(f)


def transition_table() -> Dict[NodeStatus, List[NodeStatus]]:
    """MAAS's transition table: status → statuses it may move to."""
    return {s: [NodeStatus[t] for t in allowed_targets(int(s))] for s in NodeStatus}


async def power_async(
    power_type: str,
    params: Mapping[str, str],
    action: str,
    stop_mode: str = "hard",
    retry: bool = True,
    timeout: float = 30.0,
) -> str:
    """:func:`power` as an asyncio coroutine: the BMC conversation runs on
    maas-rs's own runtime with the GIL released, so the event loop and other
    coroutines keep running."""
    return await asyncio.to_thread(power, power_type, dict(params), action, stop_mode, retry, timeout)


async def sync_source_async(
    source: Mapping[str, Any],
    store_dir: str,
    progress: Optional[Callable[[Dict[str, Any]], None]] = None,
    concurrency: int = 4,
    keep_versions: int = 2,
) -> Dict[str, Any]:
    """:func:`sync_source` as an asyncio coroutine."""
    return await asyncio.to_thread(sync_source, dict(source), store_dir, progress, concurrency, keep_versions)
