package org.minima.node.wrapper

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.withContext
import uniffi.minima_ffi.EnergyReport
import uniffi.minima_ffi.EventListener
import uniffi.minima_ffi.HistoryItem
import uniffi.minima_ffi.MinimaNode
import uniffi.minima_ffi.NetworkKind
import uniffi.minima_ffi.NodeConfig
import uniffi.minima_ffi.NodeEvent
import uniffi.minima_ffi.NodeStatus
import uniffi.minima_ffi.Payment
import uniffi.minima_ffi.PeerInfo
import uniffi.minima_ffi.RestoreReport
import uniffi.minima_ffi.Secret
import uniffi.minima_ffi.SyncReport
import uniffi.minima_ffi.WalletBalance

/**
 * Idiomatic Kotlin over the generated bindings: every call is a suspend function run on [io]
 * (the node's calls block: signing a payment takes about a second), and events are a cold
 * [Flow] whose collection holds one subscription. Errors are the generated
 * `MinimaException` subclasses. Android-only glue (service, worker, network callback) lives
 * in `org.minima.node.android` and only calls this class.
 *
 * The config's seed phrase and passphrase are [Secret] objects (`Secret(words)`), so logging
 * or printing a [NodeConfig] never shows them.
 */
class MinimaClient(config: NodeConfig, private val io: CoroutineDispatcher = Dispatchers.IO) {
    /** The generated handle (for calls the wrapper does not cover). */
    val node: MinimaNode = MinimaNode(config)

    suspend fun start() = withContext(io) { node.start() }
    suspend fun stop(deadlineMs: Long = 5_000) = withContext(io) { node.stop(deadlineMs.toULong()) }
    suspend fun suspendNode() = withContext(io) { node.suspend() }
    suspend fun resumeNode() = withContext(io) { node.resume() }
    suspend fun syncOnce(budgetMs: Long): SyncReport = withContext(io) { node.syncOnce(budgetMs.toULong()) }

    /** Stop a running [syncOnce] early; safe from any thread. */
    fun cancel() = node.cancel()

    suspend fun setPowerState(charging: Boolean, batteryPct: Int, network: NetworkKind, foreground: Boolean) =
        withContext(io) { node.setPowerState(charging, batteryPct.coerceIn(0, 100).toUByte(), network, foreground) }

    suspend fun networkChanged() = withContext(io) { node.networkChanged() }
    suspend fun status(): NodeStatus = withContext(io) { node.status() }
    suspend fun balance(): WalletBalance = withContext(io) { node.balance() }
    suspend fun newAddress(fresh: Boolean = false): String = withContext(io) { node.newAddress(fresh) }
    suspend fun send(to: String, amount: ULong, burn: ULong = 0uL): Payment =
        withContext(io) { node.send(to, amount, burn) }
    suspend fun history(): List<HistoryItem> = withContext(io) { node.history() }
    suspend fun peers(): List<PeerInfo> = withContext(io) { node.peers() }
    suspend fun addPeer(address: String) = withContext(io) { node.addPeer(address) }
    suspend fun energyReport(): EnergyReport = withContext(io) { node.energyReport() }
    suspend fun createWallet(passphrase: String? = null): String = withContext(io) { node.createWallet(passphrase) }
    suspend fun rescan(): RestoreReport = withContext(io) { node.rescan() }
    suspend fun restoreWallet(words: String, passphrase: String? = null): RestoreReport =
        withContext(io) { node.restoreWallet(words, passphrase) }

    /** The node's events; cancelling the collection cancels the subscription. */
    val events: Flow<NodeEvent> = callbackFlow {
        val sub = node.subscribe(object : EventListener {
            override fun onEvent(event: NodeEvent) {
                trySend(event)
            }
        })
        awaitClose { sub.cancel() }
    }

    /** Stop the node and free the handle. */
    suspend fun shutdown(deadlineMs: Long = 5_000) {
        stop(deadlineMs)
        node.destroy()
    }
}
