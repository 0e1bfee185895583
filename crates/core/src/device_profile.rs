//! Named devices: RAM for the memory guard, memory bandwidth for the roofline. Figures are the
//! vendors' published specifications (source given per row); they are claims, not measurements.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceProfile {
    /// The name scenarios use (`device_profile = "phone-8gb"`).
    pub name: &'static str,
    pub label: &'static str,
    pub ram_bytes: u64,
    /// Peak DRAM bandwidth in bytes/s, when the profile is a specific device.
    pub bandwidth_bytes_per_s: Option<f64>,
    pub source: &'static str,
}

const GIB: u64 = 1 << 30;

pub const PROFILES: &[DeviceProfile] = &[
    DeviceProfile {
        name: "phone-4gb",
        label: "a 4 GiB phone",
        ram_bytes: 4 * GIB,
        bandwidth_bytes_per_s: None,
        source: "RAM class only",
    },
    DeviceProfile {
        name: "phone-6gb",
        label: "a 6 GiB phone",
        ram_bytes: 6 * GIB,
        bandwidth_bytes_per_s: None,
        source: "RAM class only",
    },
    DeviceProfile {
        name: "phone-8gb",
        label: "an 8 GiB phone",
        ram_bytes: 8 * GIB,
        bandwidth_bytes_per_s: None,
        source: "RAM class only",
    },
    DeviceProfile {
        name: "phone-12gb",
        label: "a 12 GiB phone",
        ram_bytes: 12 * GIB,
        bandwidth_bytes_per_s: None,
        source: "RAM class only",
    },
    DeviceProfile {
        name: "galaxy-s24",
        label: "Galaxy S24 (Snapdragon 8 Gen 3, 8 GiB LPDDR5X)",
        ram_bytes: 8 * GIB,
        bandwidth_bytes_per_s: Some(77e9),
        source: "Qualcomm Snapdragon 8 Gen 3 product brief: LPDDR5X up to 4800 MHz, 64-bit (≈77 GB/s)",
    },
    DeviceProfile {
        name: "iphone-15-pro",
        label: "iPhone 15 Pro (Apple A17 Pro, 8 GiB LPDDR5-6400)",
        ram_bytes: 8 * GIB,
        bandwidth_bytes_per_s: Some(51.2e9),
        source: "LPDDR5-6400 on a 64-bit bus (6400 MT/s × 8 B = 51.2 GB/s)",
    },
    DeviceProfile {
        name: "m2-max",
        label: "MacBook Pro (Apple M2 Max, 24 GiB as in the seed article)",
        ram_bytes: 24 * GIB,
        bandwidth_bytes_per_s: Some(400e9),
        source: "Apple M2 Max specifications: 400 GB/s unified memory bandwidth",
    },
];

/// The profile called `name`, if there is one.
#[must_use]
pub fn find(name: &str) -> Option<&'static DeviceProfile> {
    PROFILES.iter().find(|p| p.name == name)
}
