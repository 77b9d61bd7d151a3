import java.nio.file.Files
import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import org.minima.node.wrapper.MinimaClient
import uniffi.minima_ffi.EventListener
import uniffi.minima_ffi.LogListener
import uniffi.minima_ffi.MinimaException
import uniffi.minima_ffi.MinimaNode
import uniffi.minima_ffi.NetworkKind
import uniffi.minima_ffi.NodeConfig
import uniffi.minima_ffi.NodeEvent
import uniffi.minima_ffi.Secret
import uniffi.minima_ffi.generateSeedPhrase
import uniffi.minima_ffi.initLogging
import uniffi.minima_ffi.parseCoins

const val COIN = 1_000_000_000uL
val TOTAL = 1_000_000_000uL * COIN

fun config(
    dir: Path,
    newGenesis: Boolean = false,
    genesisFile: String? = null,
    listen: String? = null,
    peers: List<String> = listOf(),
    fullMmr: Boolean = false,
    phone: Boolean = false,
    duty: Double? = null,
    seed: String? = null,
    passphrase: String? = null,
    claim: Boolean = false,
    network: String = "devnet",
) = NodeConfig(
    dataDir = dir.toString(),
    network = network,
    newDevnetGenesis = newGenesis,
    devnetGenesisFile = genesisFile,
    listen = listen,
    peers = peers,
    fullMmr = fullMmr,
    phone = phone,
    pulsesOptIn = false,
    devnetDuty = duty,
    seedPhrase = seed?.let { Secret(it) },
    passphrase = passphrase?.let { Secret(it) },
    claimGenesis = claim,
)

suspend fun until(seconds: Int, what: String, check: suspend () -> Boolean) {
    val end = System.currentTimeMillis() + seconds * 1000L
    while (System.currentTimeMillis() < end) {
        if (check()) return
        delay(50)
    }
    throw AssertionError("timed out: $what")
}

class MinimaNodeTest {
    @Test
    fun twoNodesSyncPaySuspendResumeAndRefuseBadInput() = runBlocking {
        val logs = mutableListOf<String>()
        initLogging("warn", object : LogListener {
            override fun onLog(level: String, target: String, message: String) {
                synchronized(logs) { logs.add("$level $target $message") }
            }
        })
        assertTrue(!initLogging("info", null), "logging is set up once per process")
        val root = Files.createTempDirectory("minima-kt")
        val aDir = root.resolve("a")
        val a = MinimaClient(
            config(aDir, newGenesis = true, listen = "127.0.0.1:0", fullMmr = true, duty = 0.3,
                seed = generateSeedPhrase(), claim = true)
        )
        a.start()
        val aListen = a.status().listen!!
        val bWords = generateSeedPhrase()
        val b = MinimaClient(
            config(root.resolve("b"), genesisFile = aDir.resolve(".genesis").toString(), peers = listOf(aListen),
                phone = true, seed = bWords)
        )
        b.start()
        until(60, "A claims the genesis coin") { a.balance().confirmed == TOTAL }
        until(60, "B syncs") { b.status().height >= a.status().height - 2uL && b.peers().isNotEmpty() }
        assertTrue(b.peers().first().fullMmr)

        // A pays B; B's events arrive through the Flow.
        val to = b.newAddress(false)
        val confirmed = async { withTimeout(60_000) { b.events.filterIsInstance<NodeEvent.Payment>().first { it.block != null } } }
        delay(200)
        val paid = a.send(to, 10uL * COIN, parseCoins("0.5"))
        assertTrue(paid.bytes > 7_856uL, "a signed TxPoW carries a SPHINCS+ signature")
        val ev = confirmed.await()
        assertEquals(paid.txid, ev.txid)
        assertEquals(10uL * COIN, ev.received)
        until(30, "B's balance") { b.balance().confirmed == 10uL * COIN }
        assertEquals(paid.txid, b.history().first().txid)
        assertEquals(COIN / 2uL, a.history().first { it.txid == paid.txid }.burn)

        // Bad input: typed errors, nothing spent.
        val before = a.balance()
        assertFailsWith<MinimaException.InvalidAddress> { a.send("mxd1notanaddress", COIN, 0uL) }
        assertFailsWith<MinimaException.InvalidAddress> { a.send(to.dropLast(1) + (if (to.last() == 'q') "p" else "q"), COIN, 0uL) }
        assertFailsWith<MinimaException.InvalidAmount> { a.send(to, 0uL, 0uL) }
        assertFailsWith<MinimaException.InvalidAmount> { parseCoins("1.2.3") }
        assertFailsWith<MinimaException.InsufficientFunds> { a.send(to, TOTAL, 0uL) }
        assertFailsWith<MinimaException.Wallet> { a.createWallet("pw") }
        assertFailsWith<MinimaException.Config> { MinimaNode(config(root.resolve("x"), network = "nonet")) }
        assertFailsWith<MinimaException.Config> { MinimaNode(config(root.resolve("y"), peers = listOf("not-an-address"), newGenesis = true)) }
        assertFailsWith<MinimaException.InvalidSeedPhrase> { MinimaNode(config(root.resolve("z"), newGenesis = true, seed = "abandon abandon")) }
        val twin = MinimaClient(config(aDir, newGenesis = true))
        assertFailsWith<MinimaException.Locked> { twin.start() }
        twin.node.destroy()
        assertEquals(before, a.balance())

        // Nine more coins at nine fresh keys of B: a payment needing all ten keys is too large.
        for (i in 1..9) {
            val fresh = b.newAddress(true)
            until(60, "A's change confirms") { a.balance().sendable > COIN }
            a.send(fresh, COIN, 0uL)
        }
        until(60, "B holds 19 coins") { b.balance().confirmed == 19uL * COIN }
        assertFailsWith<MinimaException.TxTooLarge> { b.send(a.newAddress(), 18uL * COIN + COIN / 2uL, 0uL) }
        assertEquals(19uL * COIN, b.balance().sendable)

        // Background: power state, sync_once, energy report; then suspend and resume.
        b.setPowerState(charging = false, batteryPct = 70, network = NetworkKind.WIFI, foreground = false)
        until(10, "B drops its connections in the background") { b.peers().isEmpty() }
        assertFailsWith<MinimaException.Network> { b.rescan() }
        val r = b.syncOnce(30_000)
        assertTrue(r.caughtUp && !r.cancelled && r.bytesIn > 0uL, "$r")
        val e = b.energyReport()
        assertTrue(e.hours.isNotEmpty() && e.hours.sumOf { it.cpuS } > 0.0 && !e.holdConnections && e.syncEveryS != null, "$e")
        b.cancel()
        b.networkChanged()
        b.suspendNode()
        assertFailsWith<MinimaException.NotRunning> { b.status() }
        b.resumeNode()
        assertEquals(19uL * COIN, b.balance().confirmed)
        b.setPowerState(charging = true, batteryPct = 90, network = NetworkKind.WIFI, foreground = true)
        b.addPeer(aListen)
        until(20, "B reconnects in the foreground") { b.peers().isNotEmpty() }

        // A third node restores B's words through A (full coin set).
        val c = MinimaClient(
            config(root.resolve("c"), genesisFile = aDir.resolve(".genesis").toString(), peers = listOf(aListen), phone = true)
        )
        c.start()
        assertFailsWith<MinimaException.Wallet> { c.balance() }
        assertFailsWith<MinimaException.InvalidSeedPhrase> { c.restoreWallet("not the words") }
        until(60, "C syncs") { c.status().height >= a.status().height - 2uL }
        val restored = c.restoreWallet(bWords, null)
        until(60, "C finds B's coins") {
            c.balance().confirmed == 19uL * COIN || run { c.rescan(); false }
        }
        assertTrue(restored.keysScanned >= 20u)
        assertEquals(19uL * COIN, c.rescan().confirmed)

        // A listener on the raw handle, cancelled.
        val sub = a.node.subscribe(object : EventListener { override fun onEvent(event: NodeEvent) {} })
        sub.cancel()

        for (n in listOf(c, b, a)) n.shutdown()
        assertTrue(synchronized(logs) { logs.none { it.contains(bWords) } }, "the seed never reaches the logs")
    }

    @Test
    fun aNodeConfigNeverPrintsItsSecrets() {
        val words = generateSeedPhrase()
        val c = config(Files.createTempDirectory("minima-kt-print"), newGenesis = true, seed = words,
            passphrase = "correct horse battery")
        val shown = c.toString()
        assertTrue(shown.contains("seedPhrase=") && shown.contains("passphrase="), shown)
        assertFalse(shown.contains(words), shown)
        assertFalse(shown.contains(words.split(" ").take(3).joinToString(" ")), shown)
        assertFalse(shown.contains("correct horse"), shown)
        assertFalse("$c".contains(words) || listOf(c).toString().contains(words))
        // The words still reach the node: a bad phrase is refused.
        assertFailsWith<MinimaException.InvalidSeedPhrase> {
            MinimaNode(config(Files.createTempDirectory("minima-kt-print"), newGenesis = true, seed = "abandon abandon"))
        }
        MinimaNode(c).destroy()
    }

    @Test
    fun aSealedWalletOpensOnlyWithItsPassphrase() = runBlocking {
        val dir = Files.createTempDirectory("minima-kt-sealed")
        val n = MinimaClient(config(dir, newGenesis = true))
        n.start()
        val words = n.createWallet("correct horse")
        assertEquals(24, words.split(" ").size)
        val addr = n.newAddress()
        n.shutdown()
        val wrong = MinimaClient(config(dir, passphrase = "wrong horse"))
        assertFailsWith<MinimaException.WrongPassphrase> { wrong.start() }
        wrong.node.destroy()
        val right = MinimaClient(config(dir, passphrase = "correct horse"))
        right.start()
        assertEquals(addr, right.newAddress())
        right.shutdown()
    }
}
