//! Multicast plans: who sends, who receives, which NoC rectangle, how many destinations, and the
//! two semaphores of the sender/receiver handshake (TT-Metal's
//! `matmul_multicore_reuse_mcast` pattern, TENSTORRENT.md section 6).
//!
//! The handshake, per block:
//! - receiver: `cb_reserve_back`; set its own *receiver* semaphore to [`MCAST_INVALID`];
//!   `noc_semaphore_inc` the sender's *sender* semaphore by 1; wait until its receiver semaphore
//!   is [`MCAST_VALID`]; `cb_push_back`.
//! - sender: read the block into its CB; wait until its *sender* semaphore equals `num_dests`,
//!   reset it to 0; `noc_async_write_multicast(cb_addr, mcast_addr(rect), bytes, num_dests)`;
//!   `noc_semaphore_set_multicast` its local receiver semaphore (holding [`MCAST_VALID`]) onto
//!   the receivers' receiver semaphore; `cb_push_back`.
//!
//! Rectangle rules enforced here (the simulator checks the same at run time):
//! - NoC coordinates are the device's (`worker_core_from_logical`). Kernels build the address with
//!   `get_noc_multicast_addr(noc_start.x, noc_start.y, noc_end.x, noc_end.y, addr)` passing the
//!   plan's [`McastRect::noc_start`]/[`McastRect::noc_end`] unchanged: for NoC 0 start is the
//!   top-left corner and end the bottom-right; for NoC 1 they are swapped (NoC 1 travels the other
//!   way), as TT-NN's matmul factories do.
//! - As on the hardware, the NoC delivers a multicast to the Tensix worker nodes inside the
//!   rectangle only: it may span non-worker rows/columns (Wormhole's DRAM column NoC x = 5, the
//!   Ethernet row y = 6), so one rectangle from the first to the last worker of a row, column or
//!   grid is right, as TT-Metal kernels compute it. Its two corners must be workers, and every
//!   *worker* inside must be an intended receiver (or the sender); otherwise it is an error
//!   ([`McastError::NonWorkerInRectangle`]).
//! - `num_dests` counts the receiver workers of the rectangle, never the sender (use it with
//!   `noc_async_write_multicast`; with `..._loopback_src` use [`McastRect::num_dests_loopback`]).

use crate::error::{McastError, ProgramError};
use crate::grid::{CoreCoord, CoreRange, NocMap};
use crate::program::{Noc, Program, SemaphoreId};

/// Value of a receiver flag once the data has landed (`VALID` in TT-Metal's common_values.hpp).
pub const MCAST_VALID: u32 = 1;
/// Value of a receiver flag while waiting (`INVALID`), and the initial value of both semaphores.
pub const MCAST_INVALID: u32 = 0;

/// One multicast destination rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McastRect {
    /// The logical receivers.
    pub receivers: CoreRange,
    /// First corner for `get_noc_multicast_addr` on the plan's NoC.
    pub noc_start: CoreCoord,
    /// Second corner for `get_noc_multicast_addr` on the plan's NoC.
    pub noc_end: CoreCoord,
    /// Receivers written by one multicast, the sender excluded.
    pub num_dests: u32,
    /// True when the sender lies inside the rectangle (then only `_loopback_src` writes it).
    pub sender_inside: bool,
}

impl McastRect {
    /// Plans the rectangle of `receivers` (logical) as seen from `sender` on `noc`.
    pub fn new(
        map: &NocMap,
        sender: CoreCoord,
        receivers: CoreRange,
        noc: Noc,
    ) -> Result<McastRect, McastError> {
        let grid = map.grid();
        grid.check_core("multicast sender", sender)?;
        grid.check_range("multicast receivers", &receivers)?;
        let mut lo = map.worker(receivers.start)?;
        let mut hi = lo;
        for c in receivers.iter() {
            let n = map.worker(c)?;
            lo = CoreCoord::new(lo.x.min(n.x), lo.y.min(n.y));
            hi = CoreCoord::new(hi.x.max(n.x), hi.y.max(n.y));
        }
        let mut count = 0u32;
        let mut sender_inside = false;
        let fail = |n: CoreCoord, what: String| McastError::NonWorkerInRectangle {
            noc_min: lo,
            noc_max: hi,
            receivers: receivers.to_string(),
            noc: n,
            what,
        };
        for y in lo.y..=hi.y {
            for x in lo.x..=hi.x {
                let n = CoreCoord::new(x, y);
                match map.logical(n) {
                    Some(l) if l == sender => sender_inside = true,
                    Some(l) if receivers.contains(l) => count += 1,
                    Some(l) => {
                        return Err(fail(
                            n,
                            format!("worker {l}, which is not one of the receivers"),
                        ));
                    }
                    // The NoC multicasts to Tensix nodes only: DRAM/Ethernet/PCIe nodes between
                    // the corners are skipped, but a corner must be a worker.
                    None if n == lo || n == hi => {
                        return Err(fail(
                            n,
                            "a corner that is not a worker core (DRAM, Ethernet, harvested or dispatch)"
                                .to_owned(),
                        ));
                    }
                    None => {}
                }
            }
        }
        if count == 0 {
            return Err(McastError::NoReceivers {
                what: format!(
                    "receivers {receivers} contain no core other than the sender {sender}"
                ),
            });
        }
        let (noc_start, noc_end) = match noc {
            Noc::Noc0 => (lo, hi),
            Noc::Noc1 => (hi, lo),
        };
        Ok(McastRect {
            receivers,
            noc_start,
            noc_end,
            num_dests: count,
            sender_inside,
        })
    }

    /// Destinations for `noc_async_write_multicast_loopback_src` (the sender counted when inside).
    pub fn num_dests_loopback(&self) -> u32 {
        self.num_dests + u32::from(self.sender_inside)
    }
}

/// A sender and its rectangles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McastGroup {
    /// Logical sender.
    pub sender: CoreCoord,
    /// Sender NoC coordinates (receivers `noc_semaphore_inc` it).
    pub sender_noc: CoreCoord,
    /// The logical receivers (the sender excluded when inside).
    pub receivers: CoreRange,
    /// Where it multicasts: the plans build exactly one rectangle per group (the NoC skips
    /// non-worker nodes inside it); the sender args still carry a count for generality.
    pub rects: Vec<McastRect>,
}

impl McastGroup {
    /// Receivers over all rectangles: the value the sender waits for on its sender semaphore.
    pub fn num_dests(&self) -> u32 {
        self.rects.iter().map(|r| r.num_dests).sum()
    }
}

/// The role of one core in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McastRole<'a> {
    /// The core multicasts to `group.rects`.
    Sender(&'a McastGroup),
    /// The core receives from `group.sender`.
    Receiver(&'a McastGroup),
}

/// How a plan's groups are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McastDirection {
    /// The left column sends along each row (matmul in0 / activations).
    AlongRows,
    /// The top row sends down each column (matmul in1 / weights).
    DownColumns,
    /// One sender, one logical rectangle of receivers.
    OneToMany,
}

/// The two semaphores of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McastSemaphores {
    /// On the sender: counts receivers that are ready.
    pub sender: SemaphoreId,
    /// On receivers: the data-valid flag.
    pub receiver: SemaphoreId,
}

/// Runtime args of a receiver, in this order (4 words, `bytemuck::Pod`): sender NoC x, y, sender
/// semaphore id, receiver semaphore id.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct McastReceiverArgs {
    /// Sender's NoC x.
    pub sender_noc_x: u32,
    /// Sender's NoC y.
    pub sender_noc_y: u32,
    /// Sender semaphore id.
    pub sender_semaphore: u32,
    /// Receiver semaphore id.
    pub receiver_semaphore: u32,
}

/// Words per rectangle in [`McastPlan::sender_args`].
pub const MCAST_RECT_WORDS: usize = 5;

/// A multicast plan over a rectangle of worker cores. Pure computation: build it from a
/// [`NocMap`] (`device.noc_map()`), then [`McastPlan::create_semaphores`] on a program and hand
/// each core its [`McastPlan::sender_args`] / [`McastPlan::receiver_args`].
///
/// ```
/// use tt_safe::grid::{Grid, NocMap, core, range};
/// use tt_safe::mcast::{McastPlan, McastRole};
/// use tt_safe::Noc;
/// // A made-up 4x3 device whose NoC coordinates are logical + 1.
/// let map = NocMap::from_fn(Grid::new(4, 3), |c| Ok::<_, ()>(core(c.x + 1, c.y + 1))).unwrap();
/// let plan = McastPlan::along_rows(&map, range(0, 0, 3, 2), Noc::Noc0).unwrap();
/// let Some(McastRole::Sender(g)) = plan.role(core(0, 1)) else { panic!() };
/// assert_eq!(g.rects.len(), 1);
/// let r = g.rects[0];
/// assert_eq!((r.noc_start, r.noc_end, r.num_dests), (core(2, 2), core(4, 2), 3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McastPlan {
    cores: CoreRange,
    noc: Noc,
    direction: McastDirection,
    groups: Vec<McastGroup>,
    semaphores: Option<McastSemaphores>,
}

impl McastPlan {
    /// The left column of `cores` multicasts along each row to the rest of the row.
    pub fn along_rows(map: &NocMap, cores: CoreRange, noc: Noc) -> Result<McastPlan, McastError> {
        map.grid().check_range("multicast plan", &cores)?;
        if cores.width() < 2 {
            return Err(McastError::NoReceivers {
                what: format!("{cores} is one column wide, so rows have no receivers"),
            });
        }
        let mut groups = Vec::new();
        for y in cores.start.y..=cores.end.y {
            let sender = CoreCoord::new(cores.start.x, y);
            let receivers = CoreRange {
                start: CoreCoord::new(cores.start.x + 1, y),
                end: CoreCoord::new(cores.end.x, y),
            };
            groups.push(Self::group(map, sender, receivers, noc)?);
        }
        Ok(McastPlan {
            cores,
            noc,
            direction: McastDirection::AlongRows,
            groups,
            semaphores: None,
        })
    }

    /// The top row of `cores` multicasts down each column to the rest of the column.
    pub fn down_columns(map: &NocMap, cores: CoreRange, noc: Noc) -> Result<McastPlan, McastError> {
        map.grid().check_range("multicast plan", &cores)?;
        if cores.height() < 2 {
            return Err(McastError::NoReceivers {
                what: format!("{cores} is one row tall, so columns have no receivers"),
            });
        }
        let mut groups = Vec::new();
        for x in cores.start.x..=cores.end.x {
            let sender = CoreCoord::new(x, cores.start.y);
            let receivers = CoreRange {
                start: CoreCoord::new(x, cores.start.y + 1),
                end: CoreCoord::new(x, cores.end.y),
            };
            groups.push(Self::group(map, sender, receivers, noc)?);
        }
        Ok(McastPlan {
            cores,
            noc,
            direction: McastDirection::DownColumns,
            groups,
            semaphores: None,
        })
    }

    /// `sender` multicasts to `receivers` (which may contain it: it is then not a receiver).
    pub fn one_to_many(
        map: &NocMap,
        sender: CoreCoord,
        receivers: CoreRange,
        noc: Noc,
    ) -> Result<McastPlan, McastError> {
        let group = Self::group(map, sender, receivers, noc)?;
        let cores = CoreRange {
            start: CoreCoord::new(
                receivers.start.x.min(sender.x),
                receivers.start.y.min(sender.y),
            ),
            end: CoreCoord::new(receivers.end.x.max(sender.x), receivers.end.y.max(sender.y)),
        };
        Ok(McastPlan {
            cores,
            noc,
            direction: McastDirection::OneToMany,
            groups: vec![group],
            semaphores: None,
        })
    }

    fn group(
        map: &NocMap,
        sender: CoreCoord,
        receivers: CoreRange,
        noc: Noc,
    ) -> Result<McastGroup, McastError> {
        let rects = vec![McastRect::new(map, sender, receivers, noc)?];
        Ok(McastGroup {
            sender,
            sender_noc: map.worker(sender)?,
            receivers,
            rects,
        })
    }

    /// The bounding rectangle of every core in the plan (senders and receivers).
    pub fn cores(&self) -> CoreRange {
        self.cores
    }

    /// The NoC the rectangles are ordered for.
    pub fn noc(&self) -> Noc {
        self.noc
    }

    /// How the groups are laid out.
    pub fn direction(&self) -> McastDirection {
        self.direction
    }

    /// One group per row / column / sender.
    pub fn groups(&self) -> &[McastGroup] {
        &self.groups
    }

    /// The largest number of rectangles any sender has (size kernel arg arrays with it).
    pub fn max_rects(&self) -> usize {
        self.groups.iter().map(|g| g.rects.len()).max().unwrap_or(0)
    }

    /// The role of `core`, or `None` when it takes no part.
    pub fn role(&self, core: CoreCoord) -> Option<McastRole<'_>> {
        if let Some(g) = self.groups.iter().find(|g| g.sender == core) {
            return Some(McastRole::Sender(g));
        }
        self.groups
            .iter()
            .find(|g| g.receivers.contains(core))
            .map(McastRole::Receiver)
    }

    /// All senders.
    pub fn senders(&self) -> impl Iterator<Item = CoreCoord> + '_ {
        self.groups.iter().map(|g| g.sender)
    }

    /// All receivers (a sender inside a one-to-many rectangle is not listed).
    pub fn receivers(&self) -> impl Iterator<Item = CoreCoord> + '_ {
        self.groups
            .iter()
            .flat_map(|g| g.receivers.iter().filter(move |c| *c != g.sender))
    }

    /// Creates the sender and receiver semaphores (both [`MCAST_INVALID`] = 0) on every core of
    /// the plan, remembers them, and returns them.
    pub fn create_semaphores(
        &mut self,
        program: &mut Program,
    ) -> Result<McastSemaphores, ProgramError> {
        let sender = program.add_semaphore(self.cores, MCAST_INVALID)?;
        let receiver = program.add_semaphore(self.cores, MCAST_INVALID)?;
        let s = McastSemaphores { sender, receiver };
        self.semaphores = Some(s);
        Ok(s)
    }

    /// Uses semaphores created elsewhere (they must exist on every core of [`McastPlan::cores`]).
    pub fn set_semaphores(&mut self, semaphores: McastSemaphores) {
        self.semaphores = Some(semaphores);
    }

    /// The semaphores, once created.
    pub fn semaphores(&self) -> Option<McastSemaphores> {
        self.semaphores
    }

    fn sems(&self) -> Result<(u32, u32), McastError> {
        self.semaphores
            .map(|s| (s.sender.id(), s.receiver.id()))
            .ok_or(McastError::NoSemaphores)
    }

    /// Runtime args of sender `core`, in this order:
    /// `[sender_semaphore_id, receiver_semaphore_id, total_num_dests, num_rects,
    ///   then per rectangle: noc_start_x, noc_start_y, noc_end_x, noc_end_y, num_dests]`
    /// ([`MCAST_RECT_WORDS`] words per rectangle, corners already ordered for the plan's NoC).
    /// The sender waits for `total_num_dests` on its sender semaphore, then multicasts the data
    /// and the VALID flag to each rectangle with that rectangle's `num_dests`.
    pub fn sender_args(&self, core: CoreCoord) -> Result<Vec<u32>, McastError> {
        let Some(McastRole::Sender(g)) = self.role(core) else {
            return Err(McastError::WrongRole {
                core,
                role: "sender",
            });
        };
        let (s, r) = self.sems()?;
        let mut out = vec![s, r, g.num_dests(), g.rects.len() as u32];
        for rect in &g.rects {
            out.extend([
                rect.noc_start.x,
                rect.noc_start.y,
                rect.noc_end.x,
                rect.noc_end.y,
                rect.num_dests,
            ]);
        }
        Ok(out)
    }

    /// Runtime args of receiver `core` (see [`McastReceiverArgs`]).
    pub fn receiver_args(&self, core: CoreCoord) -> Result<McastReceiverArgs, McastError> {
        let Some(McastRole::Receiver(g)) = self.role(core) else {
            return Err(McastError::WrongRole {
                core,
                role: "receiver",
            });
        };
        let (s, r) = self.sems()?;
        Ok(McastReceiverArgs {
            sender_noc_x: g.sender_noc.x,
            sender_noc_y: g.sender_noc.y,
            sender_semaphore: s,
            receiver_semaphore: r,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{Grid, core, range};

    /// Wormhole n150 as the simulator maps it (NoC 0 physical): DRAM column x = 5, Ethernet row y = 6.
    fn wormhole() -> NocMap {
        let xs = [1u32, 2, 3, 4, 6, 7, 8, 9];
        let ys = [1u32, 2, 3, 4, 5, 7, 8, 9];
        NocMap::from_fn(Grid::new(8, 8), |c| {
            Ok::<_, ()>(core(xs[c.x as usize], ys[c.y as usize]))
        })
        .unwrap()
    }

    fn linear(gx: u32, gy: u32) -> NocMap {
        NocMap::from_fn(Grid::new(gx, gy), |c| Ok::<_, ()>(core(c.x + 18, c.y + 18))).unwrap()
    }

    fn with_sems(mut plan: McastPlan) -> McastPlan {
        plan.set_semaphores(McastSemaphores {
            sender: SemaphoreId(3),
            receiver: SemaphoreId(4),
        });
        plan
    }

    #[test]
    fn along_rows_noc0_and_noc1() {
        let map = linear(8, 8);
        let plan = McastPlan::along_rows(&map, range(2, 1, 6, 4), Noc::Noc0).unwrap();
        assert_eq!(plan.groups().len(), 4);
        let g = &plan.groups()[1];
        assert_eq!(g.sender, core(2, 2));
        assert_eq!(g.sender_noc, core(20, 20));
        assert_eq!(g.receivers, range(3, 2, 6, 2));
        assert_eq!(g.rects.len(), 1);
        assert_eq!(
            (g.rects[0].noc_start, g.rects[0].noc_end),
            (core(21, 20), core(24, 20))
        );
        assert_eq!(g.num_dests(), 4);
        assert!(!g.rects[0].sender_inside);

        let plan1 = McastPlan::along_rows(&map, range(2, 1, 6, 4), Noc::Noc1).unwrap();
        let g1 = &plan1.groups()[1];
        // NoC 1: start and end swapped, everything else identical.
        assert_eq!(
            (g1.rects[0].noc_start, g1.rects[0].noc_end),
            (core(24, 20), core(21, 20))
        );
        assert_eq!(g1.num_dests(), 4);
    }

    #[test]
    fn down_columns_roles_and_args() {
        let map = linear(5, 4);
        let plan = with_sems(McastPlan::down_columns(&map, range(0, 0, 4, 3), Noc::Noc0).unwrap());
        assert_eq!(plan.groups().len(), 5);
        assert_eq!(plan.senders().count(), 5);
        assert_eq!(plan.receivers().count(), 15);
        match plan.role(core(3, 2)) {
            Some(McastRole::Receiver(g)) => assert_eq!(g.sender, core(3, 0)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(plan.role(core(3, 0)), Some(McastRole::Sender(_))));
        assert_eq!(
            plan.sender_args(core(1, 0)).unwrap(),
            vec![3, 4, 3, 1, 19, 19, 19, 21, 3]
        );
        let r = plan.receiver_args(core(1, 3)).unwrap();
        assert_eq!(
            (
                r.sender_noc_x,
                r.sender_noc_y,
                r.sender_semaphore,
                r.receiver_semaphore
            ),
            (19, 18, 3, 4)
        );
        assert!(matches!(
            plan.receiver_args(core(1, 0)),
            Err(McastError::WrongRole {
                role: "receiver",
                ..
            })
        ));
        assert!(matches!(
            plan.sender_args(core(1, 1)),
            Err(McastError::WrongRole { role: "sender", .. })
        ));
    }

    #[test]
    fn args_need_semaphores() {
        let plan = McastPlan::down_columns(&linear(2, 2), range(0, 0, 1, 1), Noc::Noc0).unwrap();
        assert!(
            plan.sender_args(core(0, 0))
                .unwrap_err()
                .to_string()
                .contains("create_semaphores")
        );
    }

    #[test]
    fn wormhole_rows_and_columns_are_one_rectangle_across_dram_and_ethernet() {
        let map = wormhole();
        let plan = with_sems(McastPlan::along_rows(&map, range(0, 0, 7, 7), Noc::Noc0).unwrap());
        let g = &plan.groups()[0];
        // Receivers logical x 1..=7 -> NoC x 2,3,4,6,7,8,9: one rectangle spanning the DRAM column.
        assert_eq!(g.rects.len(), 1);
        assert_eq!(
            (
                g.rects[0].noc_start,
                g.rects[0].noc_end,
                g.rects[0].num_dests
            ),
            (core(2, 1), core(9, 1), 7)
        );
        assert_eq!(plan.max_rects(), 1);
        let args = plan.sender_args(core(0, 0)).unwrap();
        assert_eq!(args, vec![3, 4, 7, 1, 2, 1, 9, 1, 7]);
        // Columns on NoC 1 span the Ethernet row y = 6, corners swapped.
        let cols = McastPlan::down_columns(&map, range(0, 0, 7, 7), Noc::Noc1).unwrap();
        let c = &cols.groups()[3];
        assert_eq!(c.rects.len(), 1);
        assert_eq!(
            (c.rects[0].noc_start, c.rects[0].noc_end),
            (core(4, 9), core(4, 2))
        );
        assert_eq!(c.num_dests(), 7);
    }

    #[test]
    fn rectangle_corner_on_a_non_worker_is_rejected() {
        // A map where logical (3, 0) sits at NoC (5, 1) and (3, 1) at NoC (4, 2): the receivers'
        // rectangle (4, 1)..(5, 2) starts at NoC (4, 1), which is no worker.
        let map = NocMap::from_fn(Grid::new(4, 2), |c| {
            let x = match (c.x, c.y) {
                (3, 0) => 5,
                (3, _) => 4,
                _ => c.x + 1,
            };
            Ok::<_, ()>(core(x, c.y + 1))
        })
        .unwrap();
        let err = McastRect::new(&map, core(0, 0), range(3, 0, 3, 1), Noc::Noc0).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("(4, 1)") && msg.contains("corner that is not a worker"),
            "{msg}"
        );
    }

    #[test]
    fn rectangle_with_foreign_worker_is_rejected() {
        // A map that is not monotonic: logical (1, 0) and (2, 0) swap NoC columns.
        let map = NocMap::from_fn(Grid::new(4, 2), |c| {
            let x = match c.x {
                1 => 3,
                2 => 2,
                3 => 4,
                _ => 1,
            };
            Ok::<_, ()>(core(x, c.y + 1))
        })
        .unwrap();
        // Receivers (0,0)..(1,0) map to NoC x 1 and 3, so the rectangle contains NoC x 2 = logical (2, 0).
        let err = McastRect::new(&map, core(0, 1), range(0, 0, 1, 0), Noc::Noc0).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("worker (2, 0)") && msg.contains("not one of the receivers"),
            "{msg}"
        );
    }

    #[test]
    fn one_to_many_counts_and_loopback() {
        let map = linear(4, 4);
        let plan = McastPlan::one_to_many(&map, core(1, 1), range(0, 0, 3, 3), Noc::Noc0).unwrap();
        let g = &plan.groups()[0];
        assert_eq!(g.num_dests(), 15);
        assert!(g.rects[0].sender_inside);
        assert_eq!(g.rects[0].num_dests_loopback(), 16);
        assert_eq!(plan.receivers().count(), 15);
        let outside =
            McastPlan::one_to_many(&map, core(0, 3), range(1, 0, 3, 1), Noc::Noc0).unwrap();
        assert_eq!(outside.groups()[0].num_dests(), 6);
        assert_eq!(outside.cores(), range(0, 0, 3, 3));
        assert!(matches!(
            McastPlan::one_to_many(&map, core(1, 1), range(1, 1, 1, 1), Noc::Noc0),
            Err(McastError::NoReceivers { .. })
        ));
    }

    #[test]
    fn wormhole_whole_grid_broadcast_is_one_rectangle() {
        let plan =
            McastPlan::one_to_many(&wormhole(), core(0, 0), range(0, 0, 7, 7), Noc::Noc0).unwrap();
        let g = &plan.groups()[0];
        assert_eq!(g.rects.len(), 1);
        assert_eq!(
            (g.rects[0].noc_start, g.rects[0].noc_end),
            (core(1, 1), core(9, 9))
        );
        assert_eq!(g.num_dests(), 63);
        assert!(g.rects[0].sender_inside);
        assert_eq!(g.rects[0].num_dests_loopback(), 64);
    }

    #[test]
    fn errors_for_degenerate_or_outside_plans() {
        let map = linear(4, 4);
        assert!(matches!(
            McastPlan::along_rows(&map, range(2, 0, 2, 3), Noc::Noc0),
            Err(McastError::NoReceivers { .. })
        ));
        assert!(matches!(
            McastPlan::down_columns(&map, range(0, 2, 3, 2), Noc::Noc0),
            Err(McastError::NoReceivers { .. })
        ));
        let err = McastPlan::along_rows(&map, range(0, 0, 4, 1), Noc::Noc0).unwrap_err();
        assert!(err.to_string().contains("4x4 worker grid"), "{err}");
    }
}
