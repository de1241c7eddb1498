#!/usr/bin/env bash
# A Java runtime for PySpark (`retain ... --engine spark` and its tests), from Debian's packages.
#
# Installs openjdk-17-jre-headless (or 21 where 17 is gone, as on newer Debian) when no `java`
# is on PATH, and prints JAVA_HOME on stdout (everything else goes to stderr):
#
#   export JAVA_HOME="$(scripts/java.sh)"
#
# Idempotent: an installed Java is just reported. Exits non-zero, saying why on stderr, when it
# cannot (not root, no apt-get, no JDK package, the install fails).
set -euo pipefail

say() { echo "java.sh: $*" >&2; }
die() { say "$*"; exit 1; }

java_home() {  # JAVA_HOME of the java on PATH: <home>/bin/java after the symlinks
    local java
    java="$(command -v java 2>/dev/null)" || return 1
    java="$(readlink -f "$java")"
    dirname "$(dirname "$java")"
}

# PySpark 4 needs Java 17 or newer.
major() { "$1/bin/java" -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print v[1]; exit}'; }

if home="$(java_home)" && [ "$(major "$home")" -ge 17 ] 2>/dev/null; then
    echo "$home"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "no Java 17+ on PATH and installing it needs root (uid $(id -u)); or set JAVA_HOME to a Java 17+ you have"
command -v apt-get >/dev/null 2>&1 || die "no Java 17+ on PATH and there is no apt-get to install it"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2 || die "apt-get update failed"
for package in openjdk-17-jre-headless openjdk-21-jre-headless; do
    if apt-cache show "$package" >/dev/null 2>&1; then
        say "installing $package (apt-get)"
        apt-get install -y -q "$package" >&2 || die "apt-get install $package failed"
        home="$(java_home)" || die "$package was installed but java is not on PATH"
        echo "$home"
        exit 0
    fi
done
die "neither openjdk-17-jre-headless nor openjdk-21-jre-headless is in the package lists"
