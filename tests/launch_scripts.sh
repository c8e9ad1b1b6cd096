# The launch scripts, run for real on this machine (tests/CMakeLists.txt runs each case):
#   <script> PEDAGOGY SOURCE_DIR WORK_DIR CASE
#   mpirun  launch/mpirun.sh 4 with config/tiny-mpi.toml trains a step on 4 ranks
#   slurm   launch/slurm.sbatch inside a (simulated) 4-task allocation without srun starts the
#           ranks with mpirun and trains a step; outside an allocation it refuses
set -u
source "$(dirname "$0")/fault_common.sh"
export PEDAGOGY_BIN=$pedagogy
args=(--config config/tiny-mpi.toml --force train.max_steps=1 logging.run_dir="$work/run"
      tutor.model="$work/w/tutor" student.model="$work/w/student")
case $case in
  mpirun)
    timeout 300 bash launch/mpirun.sh 4 "${args[@]}" > "$work/out.log" 2>&1 ||
      { tail -20 "$work/out.log"; fail "launch/mpirun.sh failed"; }
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
[ -d "$work/run/checkpoints/step-000001" ] || fail "no checkpoint"
echo "ok: $case trained a step on 4 ranks"
