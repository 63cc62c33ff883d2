//! NoC address encodings, as kernels compute them with `get_noc_addr` /
//! `get_noc_multicast_addr` (tt-metal `noc_parameters.h`, `NOC_XY_ADDR` / `NOC_MULTICAST_ADDR`).
//!
//! Both Wormhole B0 and Blackhole use 36 local-address bits and 6-bit node ids (Blackhole's
//! `noc_parameters.h` says so explicitly: it keeps the Wormhole scheme, coordinates above a 36-bit
//! address, although its NoC has a 64-bit address space):
//! - unicast: `y << 42 | x << 36 | addr`;
//! - multicast: `y_start << 54 | x_start << 48 | y_end << 42 | x_end << 36 | addr`.
//!
//! The simulator uses exactly these encodings on both architectures, so a kernel that computes
//! addresses through the API gets the same value on the simulator and on the chip. Coordinates are
//! NoC coordinates (see [`crate::arch`]); on NoC 1 the hardware counts coordinates from the other
//! corner and multicast rectangles are given with start/end swapped (the caller's concern).

use crate::coords::CoreCoord;

/// Local-address bits of a NoC address.
pub const NOC_ADDR_LOCAL_BITS: u32 = 36;
/// Bits per node-id coordinate.
pub const NOC_ADDR_NODE_ID_BITS: u32 = 6;
/// Mask of the local address.
pub const NOC_LOCAL_ADDR_MASK: u64 = (1u64 << NOC_ADDR_LOCAL_BITS) - 1;
const ID_MASK: u64 = (1u64 << NOC_ADDR_NODE_ID_BITS) - 1;

/// A decoded unicast NoC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NocAddr {
    /// NoC x.
    pub x: u32,
    /// NoC y.
    pub y: u32,
    /// Local address at the endpoint (36 bits).
    pub addr: u64,
}

impl NocAddr {
    /// Encodes `y << 42 | x << 36 | addr`. Bits of `x`/`y` above 6 and of `addr` above 36 are
    /// masked off, as the hardware ignores them; use [`NocAddr::is_encodable`] to check first.
    pub const fn encode(self) -> u64 {
        ((self.y as u64 & ID_MASK) << (NOC_ADDR_LOCAL_BITS + NOC_ADDR_NODE_ID_BITS))
            | ((self.x as u64 & ID_MASK) << NOC_ADDR_LOCAL_BITS)
            | (self.addr & NOC_LOCAL_ADDR_MASK)
    }

    /// Decodes a unicast address (bits above 48 are ignored).
    pub const fn decode(v: u64) -> Self {
        Self {
            x: ((v >> NOC_ADDR_LOCAL_BITS) & ID_MASK) as u32,
            y: ((v >> (NOC_ADDR_LOCAL_BITS + NOC_ADDR_NODE_ID_BITS)) & ID_MASK) as u32,
            addr: v & NOC_LOCAL_ADDR_MASK,
        }
    }

    /// Whether every field fits its bit width.
    pub const fn is_encodable(&self) -> bool {
        (self.x as u64) <= ID_MASK && (self.y as u64) <= ID_MASK && self.addr <= NOC_LOCAL_ADDR_MASK
    }

    /// The endpoint.
    pub const fn coord(&self) -> CoreCoord {
        CoreCoord {
            x: self.x,
            y: self.y,
        }
    }
}

/// `get_noc_addr(x, y, addr)`.
pub const fn noc_addr(x: u32, y: u32, addr: u64) -> u64 {
    NocAddr { x, y, addr }.encode()
}

/// A decoded multicast NoC address: the inclusive rectangle `start`..`end` (NoC coordinates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NocMcastAddr {
    /// First corner as written by the kernel.
    pub start: CoreCoord,
    /// Second corner as written by the kernel.
    pub end: CoreCoord,
    /// Local address at every destination.
    pub addr: u64,
}

impl NocMcastAddr {
    /// Encodes `y_start << 54 | x_start << 48 | y_end << 42 | x_end << 36 | addr`.
    pub const fn encode(self) -> u64 {
        ((self.start.y as u64 & ID_MASK) << (NOC_ADDR_LOCAL_BITS + 3 * NOC_ADDR_NODE_ID_BITS))
            | ((self.start.x as u64 & ID_MASK) << (NOC_ADDR_LOCAL_BITS + 2 * NOC_ADDR_NODE_ID_BITS))
            | ((self.end.y as u64 & ID_MASK) << (NOC_ADDR_LOCAL_BITS + NOC_ADDR_NODE_ID_BITS))
            | ((self.end.x as u64 & ID_MASK) << NOC_ADDR_LOCAL_BITS)
            | (self.addr & NOC_LOCAL_ADDR_MASK)
    }

    /// Decodes a multicast address.
    pub const fn decode(v: u64) -> Self {
        Self {
            start: CoreCoord {
                x: ((v >> (NOC_ADDR_LOCAL_BITS + 2 * NOC_ADDR_NODE_ID_BITS)) & ID_MASK) as u32,
                y: ((v >> (NOC_ADDR_LOCAL_BITS + 3 * NOC_ADDR_NODE_ID_BITS)) & ID_MASK) as u32,
            },
            end: CoreCoord {
                x: ((v >> NOC_ADDR_LOCAL_BITS) & ID_MASK) as u32,
                y: ((v >> (NOC_ADDR_LOCAL_BITS + NOC_ADDR_NODE_ID_BITS)) & ID_MASK) as u32,
            },
            addr: v & NOC_LOCAL_ADDR_MASK,
        }
    }
}

/// `get_noc_multicast_addr(x_start, y_start, x_end, y_end, addr)`.
pub const fn noc_multicast_addr(
    x_start: u32,
    y_start: u32,
    x_end: u32,
    y_end: u32,
    addr: u64,
) -> u64 {
    NocMcastAddr {
        start: CoreCoord {
            x: x_start,
            y: y_start,
        },
        end: CoreCoord { x: x_end, y: y_end },
        addr,
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicast_layout() {
        assert_eq!(noc_addr(1, 0, 0), 1u64 << 36);
        assert_eq!(noc_addr(0, 1, 0), 1u64 << 42);
        assert_eq!(
            noc_addr(9, 11, 0x1_9000),
            (11u64 << 42) | (9u64 << 36) | 0x1_9000
        );
        let d = NocAddr::decode(noc_addr(63, 63, NOC_LOCAL_ADDR_MASK));
        assert_eq!((d.x, d.y, d.addr), (63, 63, NOC_LOCAL_ADDR_MASK));
        assert!(
            !NocAddr {
                x: 64,
                y: 0,
                addr: 0
            }
            .is_encodable()
        );
    }

    #[test]
    fn multicast_layout() {
        let v = noc_multicast_addr(1, 2, 3, 4, 0x100);
        assert_eq!(
            v,
            (2u64 << 54) | (1u64 << 48) | (4u64 << 42) | (3u64 << 36) | 0x100
        );
        let d = NocMcastAddr::decode(v);
        assert_eq!(d.start, CoreCoord::new(1, 2));
        assert_eq!(d.end, CoreCoord::new(3, 4));
        assert_eq!(d.addr, 0x100);
    }
}
