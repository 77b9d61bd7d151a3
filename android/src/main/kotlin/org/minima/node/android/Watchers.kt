package org.minima.node.android

import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import android.os.BatteryManager
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import org.minima.node.wrapper.MinimaClient
import uniffi.minima_ffi.NetworkKind
import uniffi.minima_ffi.NodeConfig

/** One node per process, built from the app's config on first use. */
object NodeHolder {
    @Volatile private var c: MinimaClient? = null
    var configFor: (Context) -> NodeConfig = { error("set NodeHolder.configFor in Application.onCreate") }

    @Synchronized
    fun client(ctx: Context): MinimaClient = c ?: MinimaClient(configFor(ctx)).also { c = it }

    fun clientOrNull(): MinimaClient? = c
}

/** Battery state, read when needed (no receiver kept alive). */
object PowerWatcher {
    private fun sticky(ctx: Context): Intent? = ctx.registerReceiver(null, IntentFilter(Intent.ACTION_BATTERY_CHANGED))
    fun charging(ctx: Context): Boolean = sticky(ctx)?.getIntExtra(BatteryManager.EXTRA_PLUGGED, 0) ?: 0 != 0
    fun battery(ctx: Context): Int {
        val i = sticky(ctx) ?: return 100
        return i.getIntExtra(BatteryManager.EXTRA_LEVEL, 100) * 100 / i.getIntExtra(BatteryManager.EXTRA_SCALE, 100)
    }
}

/** Network type now, and a callback that tells the node when it changes (sockets rebind). */
object NetworkWatcher {
    fun current(ctx: Context): NetworkKind {
        val cm = ctx.getSystemService(ConnectivityManager::class.java)
        val caps = cm.getNetworkCapabilities(cm.activeNetwork) ?: return NetworkKind.NONE
        return if (caps.hasTransport(NetworkCapabilities.TRANSPORT_CELLULAR)) NetworkKind.CELLULAR else NetworkKind.WIFI
    }

    fun register(ctx: Context) {
        val cm = ctx.getSystemService(ConnectivityManager::class.java)
        cm.registerDefaultNetworkCallback(object : ConnectivityManager.NetworkCallback() {
            override fun onAvailable(network: Network) = changed(ctx)
            override fun onLost(network: Network) = changed(ctx)
        })
    }

    private fun changed(ctx: Context) {
        val c = NodeHolder.clientOrNull() ?: return
        CoroutineScope(Dispatchers.IO).launch {
            runCatching {
                c.networkChanged()
                c.setPowerState(PowerWatcher.charging(ctx), PowerWatcher.battery(ctx), current(ctx), foreground = false)
            }
        }
    }
}
