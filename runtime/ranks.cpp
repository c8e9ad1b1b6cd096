// Rank, node and local rank from MPI (see ranks.hpp).
#include "runtime/ranks.hpp"

#include "runtime/errors.hpp"

#include <fmt/format.h>
#include <mpi.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#ifdef PEDAGOGY_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace pedagogy::ranks {

namespace {

bool we_initialised = false;

// A failed MPI call is fatal (STYLE §8): a half-initialised job must not go on.
void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS)
    return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(rc, text, &length);
  PEDAGOGY_FATAL(fmt::format("{} failed: {}", call, std::string(text, length)),
                 "check the launcher (mpirun/srun) and the network between the nodes");
}

std::string device_for(int local_rank) {
#ifdef PEDAGOGY_HAVE_CUDA
  int count = 0;
  if (cudaGetDeviceCount(&count) == cudaSuccess && count > 0)
    return fmt::format("cuda:{}", local_rank % count);
#endif
  (void)local_rank;
  return "cpu";
}

} // namespace

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_NTASKS"}) {
    const char* value = std::getenv(var);
    if (value != nullptr && *value != '\0')
      return std::strcmp(var, "PMIX_RANK") == 0 || std::atoi(value) > 1;
  }
  return false;
}

rank_info this_process(bool force_mpi) {
  rank_info info;
  if (!force_mpi && !launched_by_mpi()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    info.node = host;
    info.device = device_for(0);
    return info;
  }
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    we_initialised = true;
    std::atexit(finalize);
  }
  check(MPI_Comm_rank(MPI_COMM_WORLD, &info.rank), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &info.world_size), "MPI_Comm_size");
  // The ranks sharing this node's memory: their order picks the GPU.
  MPI_Comm node_comm;
  check(
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info.rank, MPI_INFO_NULL, &node_comm),
    "MPI_Comm_split_type");
  check(MPI_Comm_rank(node_comm, &info.local_rank), "MPI_Comm_rank(node)");
  check(MPI_Comm_size(node_comm, &info.local_size), "MPI_Comm_size(node)");
  MPI_Comm_free(&node_comm);
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  check(MPI_Get_processor_name(name, &length), "MPI_Get_processor_name");
  info.node.assign(name, static_cast<size_t>(length));
  info.device = device_for(info.local_rank);
  return info;
}

namespace {

// Fixed-size records keep the collectives simple: four ints, then node and device names.
struct record {
  int numbers[4];
  char node[128];
  char device[32];
};

record to_record(const rank_info& mine) {
  record out{};
  out.numbers[0] = mine.rank;
  out.numbers[1] = mine.world_size;
  out.numbers[2] = mine.local_rank;
  out.numbers[3] = mine.local_size;
  std::strncpy(out.node, mine.node.c_str(), sizeof out.node - 1);
  std::strncpy(out.device, mine.device.c_str(), sizeof out.device - 1);
  return out;
}

std::vector<rank_info> from_records(const std::vector<record>& all) {
  std::vector<rank_info> infos;
  for (const auto& r : all) {
    rank_info i;
    i.rank = r.numbers[0];
    i.world_size = r.numbers[1];
    i.local_rank = r.numbers[2];
    i.local_size = r.numbers[3];
    i.node = r.node;
    i.device = r.device;
    infos.push_back(i);
  }
  return infos;
}

} // namespace

void check_mpi(int rc, const std::string& call) {
  check(rc, call.c_str());
}

std::vector<rank_info> gather_on_root(const rank_info& mine) {
  if (mine.world_size == 1)
    return {mine};
  const record out = to_record(mine);
  std::vector<record> all(mine.rank == 0 ? static_cast<size_t>(mine.world_size) : 0);
  check(MPI_Gather(&out, sizeof(record), MPI_BYTE, all.data(), sizeof(record), MPI_BYTE, 0,
                   MPI_COMM_WORLD),
        "MPI_Gather");
  return from_records(all);
}

std::vector<rank_info> gather_everywhere(const rank_info& mine) {
  const record out = to_record(mine);
  std::vector<record> all(static_cast<size_t>(mine.world_size));
  check(MPI_Allgather(&out, sizeof(record), MPI_BYTE, all.data(), sizeof(record), MPI_BYTE,
                      MPI_COMM_WORLD),
        "MPI_Allgather(ranks)");
  return from_records(all);
}

void finalize() {
  if (!we_initialised)
    return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized)
    MPI_Finalize();
  we_initialised = false;
}

} // namespace pedagogy::ranks
