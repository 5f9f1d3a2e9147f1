#!/usr/bin/env bash
# setup.sh: install the Debian packages facrnn needs (only the missing ones),
# then configure and build out of tree. Idempotent; sourced or run by
# jobs/demo.sh and tests/run.sh. Environment:
#   FACRNN_BUILD   build directory (default: <repo>/build)
#   FACRNN_EXTRA_PKGS  extra Debian packages to install (space separated)
set -euo pipefail

FACRNN_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FACRNN_BUILD="${FACRNN_BUILD:-$FACRNN_SRC/build}"
export FACRNN_SRC FACRNN_BUILD

PKGS=(build-essential cmake pkg-config git
      openmpi-bin libopenmpi-dev libscalapack-openmpi-dev libopenblas-dev
      libhdf5-openmpi-dev hdf5-tools libcunit1-dev libyaml-dev
      python3-h5py python3-numpy python3-scipy python3-matplotlib python3-pytest python3-torch chromium
      slurmctld slurmd slurm-client munge
      clang-14 libclang-rt-14-dev
      ${FACRNN_EXTRA_PKGS:-})

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing missing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi

# Running MPI as root (containers, CI) and oversubscribing small machines.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1

cmake -S "$FACRNN_SRC" -B "$FACRNN_BUILD" -DFACRNN_WERROR=ON >/dev/null
cmake --build "$FACRNN_BUILD" -j"$(nproc)"
export FACRNN_BIN="$FACRNN_BUILD/facrnn"
