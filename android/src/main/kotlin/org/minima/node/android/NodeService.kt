package org.minima.node.android

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.Service
import android.content.Intent
import android.content.pm.ServiceInfo
import android.os.IBinder
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import org.minima.node.wrapper.MinimaClient

/**
 * Foreground `dataSync` service that keeps the node connected while the user wants it.
 * Start it only from the app's foreground (Android 12+ refuses background starts). Android 15
 * caps `dataSync` at 6 h a day and calls [onTimeout]: the node stops within seconds. Thin on
 * purpose: everything it does is a [MinimaClient] call, which the JVM tests cover.
 */
class NodeService : Service() {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.IO)

    override fun onBind(intent: Intent?): IBinder? = null

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        val nm = getSystemService(NotificationManager::class.java)
        nm.createNotificationChannel(NotificationChannel(CHANNEL, "Minima node", NotificationManager.IMPORTANCE_LOW))
        val n = Notification.Builder(this, CHANNEL).setContentTitle("Minima node running").build()
        startForeground(1, n, ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC)
        scope.launch {
            val c = NodeHolder.client(applicationContext)
            c.start()
            c.setPowerState(PowerWatcher.charging(applicationContext), PowerWatcher.battery(applicationContext),
                NetworkWatcher.current(applicationContext), foreground = true)
        }
        return START_NOT_STICKY
    }

    override fun onTimeout(startId: Int, fgsType: Int) {
        stopNode()
        stopSelf()
    }

    override fun onDestroy() {
        stopNode()
        scope.cancel()
        super.onDestroy()
    }

    private fun stopNode() = runBlocking { NodeHolder.clientOrNull()?.suspendNode() }

    companion object {
        const val CHANNEL = "minima-node"
    }
}
