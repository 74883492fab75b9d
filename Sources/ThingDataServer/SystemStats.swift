import Foundation
import Synchronization

/// Readings for `/health`, in the original's units: percentages of the machine's memory, of
/// one core's CPU time spent by this process since the previous reading, and of the data
/// directory's file system.
final class SystemStats: Sendable {
    private let lastCPU = Mutex<(wall: Double, cpu: Double)>((0, 0))

    /// Used memory of the whole machine, in percent (what psutil's `virtual_memory().percent` gives).
    func memoryPercent() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return 0 }
        var total = 0.0, available = 0.0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let v = Double(parts[1]) else { continue }
            if parts[0] == "MemTotal:" { total = v }
            if parts[0] == "MemAvailable:" { available = v }
        }
        return total > 0 ? ((total - available) / total * 1000).rounded() / 10 : 0
    }

    /// This process's resident memory in bytes.
    static func residentBytes() -> Int64 {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let parts = text.split(separator: " ")
        guard parts.count > 1, let pages = Int64(parts[1]) else { return 0 }
        return pages * Int64(sysconf(Int32(_SC_PAGESIZE)))
    }

    func cpuPercent() -> Double {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        let wall = Date().timeIntervalSince1970
        let (w0, c0) = lastCPU.withLock { last in
            let previous = last
            last = (wall, cpu)
            return previous
        }
        guard w0 > 0, wall > w0 else { return 0 }
        return ((cpu - c0) / (wall - w0) * 1000).rounded() / 10
    }

    func storagePercent(path: String) -> Double? {
        var s = statvfs()
        guard statvfs(path, &s) == 0, s.f_blocks > 0 else { return nil }
        let used = Double(s.f_blocks - s.f_bfree)
        let usable = used + Double(s.f_bavail)
        return usable > 0 ? (used / usable * 1000).rounded() / 10 : nil
    }
}
