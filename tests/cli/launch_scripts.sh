# The launch scripts, run for real on this machine (tests/CMakeLists.txt runs each case):
#   <script> PEDAGOGY SOURCE_DIR WORK_DIR CASE
#   mpirun  launch/mpirun.sh 4 with config/tiny-mpi.toml trains on 4 ranks, and no rank listens or
#           connects beyond loopback (Open MPI's ports are not authenticated)
#   slurm   launch/slurm.sbatch inside a (simulated) 4-task allocation without srun starts the
#           ranks with mpirun and trains a step; outside an allocation it refuses
set -u
source "$(dirname "$0")/fault_common.sh"
export PEDAGOGY_BIN=$pedagogy
args=(--config config/tiny-mpi.toml --force train.max_steps=1 logging.run_dir="$work/run"
      tutor.model="$work/w/tutor" student.model="$work/w/student")
case $case in
  mpirun)
    # Three steps, so that the job is still running when its sockets are listed.
    timeout 300 bash launch/mpirun.sh 4 "${args[@]}" train.max_steps=3 > "$work/out.log" 2>&1 &
    job=$!
    trap 'kill "$job" 2> /dev/null || true' EXIT # timeout passes it on to mpirun, which stops the ranks
    # The first step's line comes after rank 0 has connected to every rank.
    wait_for_text "$work/out.log" "step 1/3" "$job" ||
      { tail -20 "$work/out.log"; fail "launch/mpirun.sh failed before its first step"; }
    # Open MPI's ports are not authenticated: on one machine no rank may listen or connect beyond
    # loopback (its TCP transport once listened on every interface for the whole job). The ranks'
    # actor ports close once rank 0 has connected; the connections stay for the job, so both ends
    # of one (two sockets of pedagogy processes) must be listed. mpirun's own PMIx tool listener
    # binds the wildcard address in Open MPI 4.1 whatever the settings (open-mpi/ompi#14441),
    # which the README says; it is left out here.
    ss -tanpH > "$work/sockets.txt"
    ours=$(grep -E 'users:\(\("pedagogy"' "$work/sockets.txt" || true)
    between=$(awk '$1 == "ESTAB" {seen[$4 " " $5] = 1} END {
      for (k in seen) { split(k, a, " "); if ((a[2] " " a[1]) in seen) n++ } print n + 0 }' <<< "$ours")
    [ "$between" -ge 2 ] || fail "no connection between two ranks found: $(cat "$work/sockets.txt")"
    loopback='^(127\.[0-9.]+|\[::1\]|\[::ffff:127\.[0-9.]+\]):[0-9]+$'
    exposed=$(awk '$1 == "LISTEN" || $1 == "ESTAB" {print $4}' <<< "$ours" | grep -vE "$loopback" || true)
    [ -z "$exposed" ] || fail "a rank listens or connects beyond loopback on: $exposed"
    expect_exit "$job" 0
    ;;
  slurm)
    env -u SLURM_NTASKS bash launch/slurm.sbatch config/tiny-mpi.toml > "$work/outside.log" 2>&1 &&
      fail "ran outside an allocation"
    grep -q "not inside a Slurm allocation" "$work/outside.log" || fail "no clear refusal"
    [ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    # --oversubscribe through Open MPI's environment: the simulated allocation has 2 cores.
    SLURM_NTASKS=4 SLURM_NTASKS_PER_NODE=4 SLURM_JOB_NODELIST=$(hostname) \
      SLURM_SUBMIT_DIR=$source_dir OMPI_MCA_rmaps_base_oversubscribe=1 \
      timeout 300 bash launch/slurm.sbatch "${args[@]:1}" > "$work/out.log" 2>&1 ||
      { tail -20 "$work/out.log"; fail "launch/slurm.sbatch failed"; }
    grep -q "4 ranks on 1 node" "$work/out.log" || fail "no banner"
    ;;
  *)
    fail "unknown case"
    ;;
esac
grep -q "learner (root)" "$work/out.log" || fail "no placement table"
ls -d "$work/run/checkpoints"/step-* > /dev/null 2>&1 || fail "no checkpoint"
echo "ok: $case trained on 4 ranks"
