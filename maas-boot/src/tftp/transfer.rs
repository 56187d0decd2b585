//! The per-transfer state machine of a read request: OACK, windows of DATA
//! blocks (RFC 7440; a window of 1 is RFC 1350's lockstep), ACK handling with
//! block-number rollover, and retransmission with a timeout and a retry limit.
//!
//! Pure: it never touches a socket or a clock. The caller feeds it events with
//! the current [`Instant`] and carries out the returned [`Action`]; it asks for
//! a timeout event at [`Transfer::deadline`].

use std::time::{Duration, Instant};

/// What the caller must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the OACK (again).
    SendOack,
    /// Send DATA blocks `first..=last` (internal 1-based indexes; the wire
    /// number is `index as u16`, which wraps after 65535 blocks).
    SendBlocks {
        /// First block index.
        first: u64,
        /// Last block index, inclusive.
        last: u64,
    },
    /// Nothing to send (a duplicate or stale ACK).
    Wait,
    /// The last block was acknowledged.
    Done,
    /// The retry limit was reached; give up silently.
    GiveUp,
}

/// Where a transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Oack,
    Data,
    Finished,
}

/// One read transfer.
#[derive(Clone, Debug)]
pub struct Transfer {
    blksize: u64,
    windowsize: u64,
    /// Index of the final block: the first one shorter than `blksize` (maybe empty).
    final_block: u64,
    /// Highest block the client acknowledged (0 = none / the OACK).
    acked: u64,
    /// Highest block sent so far.
    sent: u64,
    phase: Phase,
    timeout: Duration,
    retries: u32,
    max_retries: u32,
    deadline: Instant,
    /// The `acked` value whose duplicate ACK already triggered a resend.
    gap_resent: Option<u64>,
}

impl Transfer {
    /// A transfer of `size` bytes. `oack` tells whether negotiation produced an
    /// OACK the client must acknowledge with ACK 0 before data flows.
    pub fn new(
        size: u64,
        blksize: u16,
        windowsize: u16,
        oack: bool,
        timeout: Duration,
        max_retries: u32,
        now: Instant,
    ) -> Self {
        let blksize = u64::from(blksize.max(1));
        Self {
            blksize,
            windowsize: u64::from(windowsize.max(1)),
            final_block: size / blksize + 1,
            acked: 0,
            sent: 0,
            phase: if oack { Phase::Oack } else { Phase::Data },
            timeout,
            retries: 0,
            max_retries,
            deadline: now + timeout,
            gap_resent: None,
        }
    }

    /// The first thing to send.
    pub fn start(&mut self, now: Instant) -> Action {
        self.deadline = now + self.timeout;
        match self.phase {
            Phase::Oack => Action::SendOack,
            _ => self.next_window(),
        }
    }

    /// Byte range of block `index` within the file: (offset, length).
    pub fn block_range(&self, index: u64, size: u64) -> (u64, usize) {
        let off = (index - 1).saturating_mul(self.blksize);
        let len = size.saturating_sub(off).min(self.blksize) as usize;
        (off, len)
    }

    /// When the caller must call [`Transfer::on_timeout`] if nothing arrives.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The highest block sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The number of blocks in the file.
    pub fn final_block(&self) -> u64 {
        self.final_block
    }

    fn next_window(&mut self) -> Action {
        let first = self.acked + 1;
        let last = (self.acked + self.windowsize).min(self.final_block);
        self.sent = self.sent.max(last);
        Action::SendBlocks { first, last }
    }

    /// The client acknowledged wire block `block`.
    pub fn on_ack(&mut self, block: u16, now: Instant) -> Action {
        match self.phase {
            Phase::Finished => Action::Done,
            Phase::Oack if block == 0 => {
                self.phase = Phase::Data;
                self.progress(now)
            }
            Phase::Oack => Action::Wait,
            Phase::Data => {
                // Map the 16-bit number onto the unacknowledged blocks that are in
                // flight; anything else is a duplicate or stale ACK, which must not
                // trigger a resend (the Sorcerer's Apprentice bug, RFC 1123 4.2.3.1).
                let Some(index) = (self.acked + 1..=self.sent)
                    .rev()
                    .find(|&i| i as u16 == block)
                else {
                    // With windows, a repeated ACK of the last acknowledged block is
                    // how a client reports a gap (RFC 7440 §4): resend the window
                    // once for it, not once per duplicate.
                    if self.windowsize > 1
                        && block == self.acked as u16
                        && self.sent > self.acked
                        && self.gap_resent != Some(self.acked)
                    {
                        self.gap_resent = Some(self.acked);
                        return self.progress(now);
                    }
                    return Action::Wait;
                };
                self.acked = index;
                if index == self.final_block {
                    self.phase = Phase::Finished;
                    return Action::Done;
                }
                self.progress(now)
            }
        }
    }

    fn progress(&mut self, now: Instant) -> Action {
        self.retries = 0;
        self.deadline = now + self.timeout;
        self.next_window()
    }

    /// Nothing arrived before the deadline.
    pub fn on_timeout(&mut self, now: Instant) -> Action {
        if self.phase == Phase::Finished {
            return Action::Done;
        }
        if now < self.deadline {
            return Action::Wait;
        }
        self.retries += 1;
        if self.retries > self.max_retries {
            return Action::GiveUp;
        }
        self.deadline = now + self.timeout;
        match self.phase {
            Phase::Oack => Action::SendOack,
            _ => self.next_window(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: Duration = Duration::from_secs(1);

    #[test]
    fn lockstep_without_options() {
        let now = Instant::now();
        let mut t = Transfer::new(1024, 512, 1, false, T, 3, now);
        assert_eq!(t.start(now), Action::SendBlocks { first: 1, last: 1 });
        assert_eq!(t.on_ack(1, now), Action::SendBlocks { first: 2, last: 2 });
        // 1024 is a multiple of 512: a final empty block 3 ends the transfer.
        assert_eq!(t.on_ack(2, now), Action::SendBlocks { first: 3, last: 3 });
        assert_eq!(t.block_range(3, 1024), (1024, 0));
        assert_eq!(t.on_ack(3, now), Action::Done);
    }

    #[test]
    fn oack_then_windows() {
        let now = Instant::now();
        let mut t = Transfer::new(10 * 100 + 5, 100, 4, true, T, 3, now);
        assert_eq!(t.start(now), Action::SendOack);
        assert_eq!(t.on_ack(1, now), Action::Wait);
        assert_eq!(t.on_ack(0, now), Action::SendBlocks { first: 1, last: 4 });
        // The client saw a gap after block 2: resume from 3.
        assert_eq!(t.on_ack(2, now), Action::SendBlocks { first: 3, last: 6 });
        // It lost block 3 too and repeats ACK 2: one resend, then no more.
        assert_eq!(t.on_ack(2, now), Action::SendBlocks { first: 3, last: 6 });
        assert_eq!(
            t.on_ack(2, now),
            Action::Wait,
            "duplicate ACK resends only once"
        );
        assert_eq!(t.on_ack(6, now), Action::SendBlocks { first: 7, last: 10 });
        assert_eq!(
            t.on_ack(10, now),
            Action::SendBlocks {
                first: 11,
                last: 11
            }
        );
        assert_eq!(t.on_ack(11, now), Action::Done);
    }

    #[test]
    fn lockstep_ignores_duplicate_acks() {
        let now = Instant::now();
        let mut t = Transfer::new(5000, 512, 1, false, T, 3, now);
        t.start(now);
        assert_eq!(t.on_ack(1, now), Action::SendBlocks { first: 2, last: 2 });
        assert_eq!(t.on_ack(1, now), Action::Wait, "Sorcerer's Apprentice");
    }

    #[test]
    fn retransmits_then_gives_up() {
        let start = Instant::now();
        let mut t = Transfer::new(5000, 512, 2, false, T, 2, start);
        assert_eq!(t.start(start), Action::SendBlocks { first: 1, last: 2 });
        assert_eq!(t.on_timeout(start + T / 2), Action::Wait, "too early");
        assert_eq!(
            t.on_timeout(start + T),
            Action::SendBlocks { first: 1, last: 2 }
        );
        assert_eq!(t.deadline(), start + 2 * T);
        assert_eq!(
            t.on_timeout(start + 2 * T),
            Action::SendBlocks { first: 1, last: 2 }
        );
        assert_eq!(t.on_timeout(start + 3 * T), Action::GiveUp);
    }

    #[test]
    fn ack_resets_retries() {
        let s = Instant::now();
        let mut t = Transfer::new(5000, 512, 1, false, T, 1, s);
        t.start(s);
        assert_eq!(
            t.on_timeout(s + T),
            Action::SendBlocks { first: 1, last: 1 }
        );
        assert_eq!(t.on_ack(1, s + T), Action::SendBlocks { first: 2, last: 2 });
        assert_eq!(
            t.on_timeout(s + 2 * T),
            Action::SendBlocks { first: 2, last: 2 }
        );
    }

    #[test]
    fn block_numbers_roll_over() {
        let now = Instant::now();
        let size = 70_000u64 * 8;
        let mut t = Transfer::new(size, 8, 1, false, T, 3, now);
        t.start(now);
        for i in 1..70_000u64 {
            assert_eq!(
                t.on_ack(i as u16, now),
                Action::SendBlocks {
                    first: i + 1,
                    last: i + 1
                }
            );
        }
        assert_eq!(
            t.on_ack(70_000u64 as u16, now),
            Action::SendBlocks {
                first: 70_001,
                last: 70_001
            }
        );
        assert_eq!(t.on_ack(70_001u64 as u16, now), Action::Done);
    }

    proptest! {
        /// Whatever ACKs a (possibly hostile) client sends, windows stay inside the
        /// file, never exceed the window size, and never go backwards past an ACK.
        #[test]
        fn windows_stay_in_bounds(size in 0u64..20_000, blk in 8u16..600, win in 1u16..20,
                                  acks in proptest::collection::vec(any::<u16>(), 0..200)) {
            let now = Instant::now();
            let mut t = Transfer::new(size, blk, win, false, T, 5, now);
            let check = |a: Action, t: &Transfer| {
                if let Action::SendBlocks { first, last } = a {
                    assert!(first >= 1 && first <= last && last <= t.final_block());
                    assert!(last - first < u64::from(win));
                }
            };
            let a = t.start(now);
            check(a, &t);
            for ack in acks {
                let a = t.on_ack(ack, now);
                check(a, &t);
            }
        }
    }
}
