//! `stats`: a container's usage as docker's stats API reports it, read
//! from its cgroup (v1, v2 or hybrid: runtime-core resolves where each
//! controller is), the network namespace of its init, and the host's CPU
//! time; and docker's arithmetic on two samples (CPU %) or one (memory
//! without the page cache, memory %).

use std::path::Path;

use super::record::Container;
use super::{Engine, Result};
use crate::config::NetworkMode;

/// The host's side of a sample, read once for every container of a round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostUsage {
    /// CPU time of all CPUs (user, nice, system, idle, iowait, irq,
    /// softirq of /proc/stat), in nanoseconds: docker's
    /// `system_cpu_usage`.
    pub system_ns: u64,
    /// CPUs listed in /proc/stat.
    pub online_cpus: u32,
    /// MemTotal: the limit docker shows for a container without one.
    pub memory_total: u64,
}

impl HostUsage {
    pub fn read() -> Result<HostUsage> {
        let stat = read_proc(Path::new("/proc/stat"))?;
        let meminfo = read_proc(Path::new("/proc/meminfo"))?;
        // SAFETY: sysconf takes a constant and returns a number.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Ok(parse_host(
            &stat,
            &meminfo,
            u64::try_from(ticks).unwrap_or(100).max(1),
        ))
    }
}

/// A running container's usage at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU time the container used, in nanoseconds.
    pub cpu_ns: u64,
    pub host: HostUsage,
    /// Memory charged to the container without its inactive page cache
    /// (docker subtracts `total_inactive_file` on v1, `inactive_file` on
    /// v2).
    pub memory: u64,
    /// Its memory limit, or the host's memory when it has none (or a
    /// larger one), as docker shows it.
    pub memory_limit: u64,
    /// Bytes received and sent on its interfaces but loopback; nothing
    /// with the host's network, which is not the container's own.
    pub net_rx: u64,
    pub net_tx: u64,
    /// Bytes read from and written to block devices.
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

impl Sample {
    /// docker's CPU %: the container's share of the host's CPU time
    /// between two samples, times the CPUs (so one busy CPU of four is
    /// 100%).
    pub fn cpu_percent(&self, previous: &Sample) -> f64 {
        let cpu = self.cpu_ns as f64 - previous.cpu_ns as f64;
        let system = self.host.system_ns as f64 - previous.host.system_ns as f64;
        if cpu > 0.0 && system > 0.0 {
            cpu / system * f64::from(self.host.online_cpus) * 100.0
        } else {
            0.0
        }
    }

    pub fn memory_percent(&self) -> f64 {
        if self.memory_limit == 0 {
            return 0.0;
        }
        self.memory as f64 / self.memory_limit as f64 * 100.0
    }
}

impl Engine {
    /// The container's usage now; `None` when it is not running (docker
    /// shows zeros for it).
    pub fn sample(&self, container: &Container, host: HostUsage) -> Result<Option<Sample>> {
        if !container.state.status.is_live() || container.state.pid <= 0 {
            return Ok(None);
        }
        let id = container.id.parse()?;
        let record = match self.runtime_root().load(&id) {
            Ok(record) => record,
            Err(runtime_core::Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // Where create put it: no read of the host's mount table.
        let cgroup = &record.cgroup;
        if !cgroup.exists() {
            return Ok(None);
        }
        let stats = cgroup.stats().map_err(runtime_core::Error::from)?;
        let mut sample = Sample {
            host,
            ..Sample::default()
        };
        if let Some(cpu) = &stats.cpu {
            sample.cpu_ns = cpu.usage_ns;
        }
        if let Some(memory) = &stats.memory {
            sample.memory = usage_without_cache(memory);
            sample.memory_limit = match memory.limit {
                Some(limit) if host.memory_total == 0 || limit <= host.memory_total => limit,
                _ => host.memory_total,
            };
        }
        if let Some(pids) = &stats.pids {
            sample.pids = pids.current;
        }
        if let Some(io) = &stats.io {
            sample.block_read = io.devices.iter().map(|d| d.read_bytes).sum();
            sample.block_write = io.devices.iter().map(|d| d.write_bytes).sum();
        }
        if container.config.network != NetworkMode::Host {
            let dev = format!("/proc/{}/net/dev", container.state.pid);
            // Gone meanwhile: no traffic to count.
            if let Ok(text) = std::fs::read_to_string(dev) {
                (sample.net_rx, sample.net_tx) = parse_net_dev(&text);
            }
        }
        Ok(Some(sample))
    }
}

fn read_proc(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(super::error::io(format!("reading {}", path.display())))
}

/// docker's `calculateMemUsageUnixNoCache`.
fn usage_without_cache(memory: &runtime_core::cgroups::MemoryStats) -> u64 {
    let inactive = memory
        .stat
        .get("total_inactive_file")
        .or_else(|| memory.stat.get("inactive_file"))
        .copied()
        .unwrap_or(0);
    if inactive < memory.usage {
        memory.usage - inactive
    } else {
        memory.usage
    }
}

fn parse_host(stat: &str, meminfo: &str, ticks_per_second: u64) -> HostUsage {
    let mut host = HostUsage::default();
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(name) = fields.next() else { continue };
        if name == "cpu" {
            let ticks: u64 = fields.take(7).filter_map(|f| f.parse::<u64>().ok()).sum();
            host.system_ns = ticks.saturating_mul(1_000_000_000) / ticks_per_second;
        } else if name.len() > 3 && name.starts_with("cpu") {
            host.online_cpus += 1;
        }
    }
    host.memory_total = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    host
}

/// Received and sent bytes of every interface but loopback.
fn parse_net_dev(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0u64, 0u64);
    // Two header lines, then `name: rx-bytes packets ... tx-bytes ...`.
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let counters: Vec<u64> = counters
            .split_whitespace()
            .map(|c| c.parse().unwrap_or(0))
            .collect();
        rx += counters.first().copied().unwrap_or(0);
        tx += counters.get(8).copied().unwrap_or(0);
    }
    (rx, tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_cpu_time_and_memory() {
        let stat = "cpu  100 0 50 800 50 0 0 7 0 0\ncpu0 50 0 25 400 25 0 0 3 0 0\ncpu1 50 0 25 400 25 0 0 4 0 0\nintr 1\n";
        let host = parse_host(stat, "MemTotal:        2048 kB\nMemFree: 1 kB\n", 100);
        // steal (7) is not counted, as in docker.
        assert_eq!(host.system_ns, 1000 * 10_000_000);
        assert_eq!(host.online_cpus, 2);
        assert_eq!(host.memory_total, 2 << 20);
    }

    #[test]
    fn cpu_percent_is_a_share_of_all_cpus() {
        let host = |ns| HostUsage {
            system_ns: ns,
            online_cpus: 4,
            memory_total: 0,
        };
        let before = Sample {
            cpu_ns: 1_000,
            host: host(10_000),
            ..Sample::default()
        };
        // A quarter of all CPU time: one CPU of four, busy.
        let after = Sample {
            cpu_ns: 3_500,
            host: host(20_000),
            ..Sample::default()
        };
        assert!((after.cpu_percent(&before) - 100.0).abs() < 1e-9);
        assert_eq!(before.cpu_percent(&after), 0.0);
    }

    #[test]
    fn memory_leaves_out_the_inactive_cache() {
        let mut memory = runtime_core::cgroups::MemoryStats {
            usage: 10_000,
            ..Default::default()
        };
        memory.stat.insert("total_inactive_file".into(), 4_000);
        memory.stat.insert("inactive_file".into(), 1_000);
        assert_eq!(usage_without_cache(&memory), 6_000);
        memory.stat.remove("total_inactive_file");
        assert_eq!(usage_without_cache(&memory), 9_000);
        memory.stat.insert("inactive_file".into(), 20_000);
        assert_eq!(usage_without_cache(&memory), 10_000);
    }

    #[test]
    fn loopback_traffic_is_not_counted() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n  eth0: 1200 10 0 0 0 0 0 0 300 3 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(text), (1200, 300));
    }
}
