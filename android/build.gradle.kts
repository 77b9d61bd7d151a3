// Android library module: the generated Kotlin (from scripts/bindgen.sh), the wrapper, the
// service and the worker; jniLibs filled by scripts/build-android.sh. Not built on the CI
// machines (no Android SDK there); the wrapper is compiled and tested on the JVM instead
// (bindings/kotlin, run by scripts/test.sh).
plugins {
    id("com.android.library") version "8.7.3"
    kotlin("android") version "2.2.21"
}

android {
    namespace = "org.minima.node"
    compileSdk = 35
    defaultConfig { minSdk = 26 }
    sourceSets["main"].java.srcDirs("src/main/kotlin", "build/generated/uniffi")
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
    implementation("androidx.work:work-runtime-ktx:2.10.0")
}
