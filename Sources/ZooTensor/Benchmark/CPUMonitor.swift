import Foundation

/// Notices other processes using the CPU during a measurement.
///
/// The machines zoo is measured on are shared; another busy process can slow a run several
/// times over. A monitor compares the CPU time all processes used (`/proc/stat`) with this
/// process's own (`/proc/self/stat`) over the same interval.
public struct CPUMonitor: Sendable {
    private let start: (total: Int, own: Int, wall: Date)

    /// Starts measuring now.
    public init() {
        start = (Self.busyTicks() ?? 0, Self.ownTicks() ?? 0, Date())
    }

    /// The other processes' CPU use since the monitor started, in cores (0.5 = half a core
    /// busy on average). Nil where `/proc` is not available.
    public func othersCores() -> Double? {
        guard let total = Self.busyTicks(), let own = Self.ownTicks() else { return nil }
        let seconds = Date().timeIntervalSince(start.wall)
        guard seconds > 0 else { return nil }
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        let others = Double((total - start.total) - (own - start.own)) / ticksPerSecond
        return max(0, others / seconds)
    }

    /// A sentence for a benchmark's output when other processes used more than `threshold`
    /// cores, or nil when the CPU was quiet.
    public func contentionWarning(threshold: Double = 0.1) -> String? {
        guard let cores = othersCores(), cores > threshold else { return nil }
        return String(format: "warning: other processes used %.2f cores during this run; figures are lower than on a quiet machine", cores)
    }

    /// Busy ticks of all CPUs: everything in the `cpu` line of /proc/stat but idle and iowait.
    private static func busyTicks() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { Int($0) }
        guard fields.count >= 5 else { return nil }
        return fields.reduce(0, +) - fields[3] - fields[4]
    }

    /// This process's user plus system ticks (fields 14 and 15 of /proc/self/stat).
    private static func ownTicks() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after the command name, which may contain spaces, start at field 3.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return user + system
    }
}
