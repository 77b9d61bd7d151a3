package org.minima.node.android

import android.content.Context
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.NetworkType
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import java.util.concurrent.TimeUnit

/**
 * WorkManager's periodic `syncOnce`: every 15 min on any network (a short run), and a longer
 * run while charging. Pulses stay off unless the user opted in (the node's energy policy decides).
 */
class SyncWorker(ctx: Context, params: WorkerParameters) : CoroutineWorker(ctx, params) {
    override suspend fun doWork(): Result {
        val c = NodeHolder.client(applicationContext)
        return try {
            c.resumeNode()
            c.setPowerState(PowerWatcher.charging(applicationContext), PowerWatcher.battery(applicationContext),
                NetworkWatcher.current(applicationContext), foreground = false)
            val budget = if (inputData.getBoolean(KEY_LONG, false)) 120_000L else 25_000L
            c.syncOnce(budget)
            c.suspendNode()
            Result.success()
        } catch (e: Exception) {
            Result.retry()
        }
    }

    override suspend fun getForegroundInfo() = throw UnsupportedOperationException("not a foreground worker")

    companion object {
        const val KEY_LONG = "long"

        /** Schedule the short periodic run and the longer charging-only one. */
        fun schedule(ctx: Context) {
            val wm = WorkManager.getInstance(ctx)
            val net = Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build()
            wm.enqueueUniquePeriodicWork("minima-sync", ExistingPeriodicWorkPolicy.KEEP,
                PeriodicWorkRequestBuilder<SyncWorker>(15, TimeUnit.MINUTES).setConstraints(net).build())
            val charging = Constraints.Builder().setRequiredNetworkType(NetworkType.UNMETERED).setRequiresCharging(true).build()
            wm.enqueueUniquePeriodicWork("minima-sync-long", ExistingPeriodicWorkPolicy.KEEP,
                PeriodicWorkRequestBuilder<SyncWorker>(1, TimeUnit.HOURS).setConstraints(charging)
                    .setInputData(androidx.work.workDataOf(KEY_LONG to true)).build())
        }
    }
}
