// Swift wrapper, parallel to the Kotlin MinimaClient: async calls off the caller's thread,
// events as an AsyncStream, a BGTaskScheduler helper and an NWPathMonitor hook.
// Generated bindings come from scripts/bindgen.sh. Not compiled here (no Swift toolchain).
import BackgroundTasks
import Foundation
import MinimaFFI
import Network

/// The config's seed phrase and passphrase are `Secret` objects (`Secret(value: words)`), so
/// printing or logging a `NodeConfig` never shows them (as in the Kotlin wrapper).
public final class MinimaClient {
    public let node: MinimaNode
    private let queue = DispatchQueue(label: "org.minima.node", qos: .utility)

    public init(config: NodeConfig) throws { node = try MinimaNode(config: config) }

    private func run<T>(_ f: @escaping () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in
            queue.async { c.resume(with: Result { try f() }) }
        }
    }

    public func start() async throws { try await run { try self.node.start() } }
    public func stop(deadlineMs: UInt64 = 5_000) async throws { try await run { try self.node.stop(deadlineMs: deadlineMs) } }
    public func suspend() async throws { try await run { try self.node.suspend() } }
    public func resume() async throws { try await run { try self.node.resume() } }
    public func syncOnce(budgetMs: UInt64) async throws -> SyncReport { try await run { try self.node.syncOnce(budgetMs: budgetMs) } }
    public func cancel() { node.cancel() }
    public func setPowerState(charging: Bool, batteryPct: UInt8, network: NetworkKind, foreground: Bool) async throws {
        try await run { try self.node.setPowerState(charging: charging, batteryPct: batteryPct, network: network, foreground: foreground) }
    }
    public func networkChanged() async throws { try await run { try self.node.networkChanged() } }
    public func status() async throws -> NodeStatus { try await run { try self.node.status() } }
    public func balance() async throws -> WalletBalance { try await run { try self.node.balance() } }
    public func newAddress(fresh: Bool = false) async throws -> String { try await run { try self.node.newAddress(fresh: fresh) } }
    public func send(to: String, amount: UInt64, burn: UInt64 = 0) async throws -> Payment {
        try await run { try self.node.send(to: to, amount: amount, burn: burn) }
    }
    public func history() async throws -> [HistoryItem] { try await run { try self.node.history() } }
    public func energyReport() async throws -> EnergyReport { try await run { try self.node.energyReport() } }

    /// The node's events; ending the stream cancels the subscription.
    public var events: AsyncStream<NodeEvent> {
        AsyncStream { cont in
            final class L: EventListener {
                let cont: AsyncStream<NodeEvent>.Continuation
                init(_ c: AsyncStream<NodeEvent>.Continuation) { cont = c }
                func onEvent(event: NodeEvent) { cont.yield(event) }
            }
            let sub = node.subscribe(listener: L(cont))
            cont.onTermination = { _ in sub.cancel() }
        }
    }
}

/// Runs `syncOnce` from BGAppRefresh / BGProcessing tasks; the expiration handler cancels it.
public enum MinimaBackground {
    public static func register(id: String, client: MinimaClient, budgetMs: UInt64 = 25_000) {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: id, using: nil) { task in
            task.expirationHandler = { client.cancel() }
            Task {
                do {
                    try await client.resume()
                    _ = try await client.syncOnce(budgetMs: budgetMs)
                    try await client.suspend()
                    task.setTaskCompleted(success: true)
                } catch { task.setTaskCompleted(success: false) }
            }
        }
    }
}

/// Tells the node when the path changes (its QUIC connections migrate).
public final class MinimaPathMonitor {
    private let monitor = NWPathMonitor()
    public init(client: MinimaClient) {
        monitor.pathUpdateHandler = { path in
            let kind: NetworkKind = path.status != .satisfied ? .none : (path.usesInterfaceType(.cellular) ? .cellular : .wifi)
            Task {
                try? await client.networkChanged()
                try? await client.setPowerState(charging: false, batteryPct: 100, network: kind, foreground: true)
            }
        }
        monitor.start(queue: DispatchQueue(label: "org.minima.path"))
    }
}
