//! SMB1 messages (MS-CIFS 2.2): the commands that carry files.

use super::{Phase, State};
use crate::AppEvent;

/// SMB1 records are not parsed for files yet.
pub(super) fn record(
    _st: &mut State,
    _dir: usize,
    _rec: &[u8],
    _full: usize,
    _out: &mut Vec<AppEvent>,
) -> Option<Phase> {
    None
}
