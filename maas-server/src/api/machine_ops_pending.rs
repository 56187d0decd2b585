//! Placeholder for the machine ops until `maas_core::actions` is merged
//! from main: every op answers 503 so nothing pretends to work. Replaced by
//! `machine_ops.rs` (already written) at the merge.

use maas_core::Machine;

use super::{ApiError, Call, Reply};
use crate::db::machines::{MachineRecord, StoredMachine};
use crate::db::users::User;

fn pending() -> ApiError {
    ApiError {
        status: 503,
        body: super::ErrorBody::Text("Machine actions are not available in this build.".into()),
    }
}

/// Admin edit check (admin and not locked).
pub fn authorize_admin_edit(m: &Machine, u: &User) -> Result<(), ApiError> {
    if m.locked {
        return Err(ApiError::forbidden("Machine is locked."));
    }
    if !u.is_superuser {
        return Err(ApiError::forbidden("Only administrators may do this."));
    }
    Ok(())
}

/// Owner edit check.
pub fn authorize_owner_edit(m: &Machine, u: &User) -> Result<(), ApiError> {
    if m.locked {
        return Err(ApiError::forbidden("Machine is locked."));
    }
    if u.is_superuser || m.owner.as_deref() == Some(&u.username) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Not the owner."))
    }
}

/// Creation rules.
pub fn on_create(
    _c: &mut Call<'_>,
    _u: &User,
    _r: &mut MachineRecord,
    deployed: bool,
) -> Result<(), ApiError> {
    if deployed { Err(pending()) } else { Ok(()) }
}

/// Commissioning after create.
pub fn commission_new(
    _c: &mut Call<'_>,
    _u: &User,
    _sm: &mut StoredMachine,
) -> Result<(), ApiError> {
    Ok(())
}

/// Pending.
pub fn deploy(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn release(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn release_many(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn allocate(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn commission(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn test(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn abort(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn mark_broken(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn mark_fixed(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn rescue_mode(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn exit_rescue_mode(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn lock(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn unlock(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn power_on(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn power_off(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn query_power_state(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn override_failed_testing(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn set_storage_layout(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn accept(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn accept_all(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}

/// Pending.
pub fn clone(_c: &mut Call<'_>) -> Result<Reply, ApiError> {
    Err(pending())
}
