#!/usr/bin/env bash
# N ranks of one training job on this machine (CPU), as a cluster runs them: one process per rank,
# the placement from the config, the tutor's weights broadcast over MPI after each step.
#   bash launch/mpirun.sh N --config config/tiny-mpi.toml --force [overrides...]
# Builds first (unless PEDAGOGY_BIN names a binary). Ranks may outnumber the cores
# (--oversubscribe); Open MPI's run-as-root guard is lifted when running as root (containers).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
n=${1:?usage: bash launch/mpirun.sh N --config CONFIG [--force|--resume] [overrides...]}
shift
if [ -z "${PEDAGOGY_BIN:-}" ]; then
  bash launch/build.sh >/dev/null
  PEDAGOGY_BIN=${BUILD_DIR:-$root/build}/pedagogy
fi
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# Open MPI's own ports are not authenticated (unlike the actors' TLS ports): a stranger who
# connects to one can hang the job. On one machine the ranks need no network at all: shared
# memory between ranks, and the launcher's control channel on the loopback interface only.
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader}
export OMPI_MCA_oob_tcp_if_include=${OMPI_MCA_oob_tcp_if_include:-lo}
# --bind-to none: each rank's torch threads may use any core (Open MPI would pin a rank to one).
exec mpirun -np "$n" --oversubscribe --bind-to none "$PEDAGOGY_BIN" train "$@"
