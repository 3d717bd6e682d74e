#pragma once
// A small file system (a tmpfs of `mb` MB, mounted at `dir` while this lives) that fill() fills
// up with a file, until a write fails; mounted() is false without root.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace simcap::testing {

class small_disk {
 public:
  small_disk(std::filesystem::path dir, int mb) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    mounted_ =
        ::geteuid() == 0 &&
        std::system(("mount -t tmpfs -o size=" + std::to_string(mb) + "m tmpfs " + dir_.string())
                        .c_str()) == 0;
  }
  // Unmounts it and removes the (then empty) mount point.
  ~small_disk() {
    if (mounted_) std::system(("umount -l " + dir_.string()).c_str());
    std::error_code ec;
    std::filesystem::remove(dir_, ec);
  }
  small_disk(const small_disk&) = delete;
  small_disk& operator=(const small_disk&) = delete;
  bool mounted() const { return mounted_; }
  const std::filesystem::path& dir() const { return dir_; }
  // Fills it; returns the file that did (remove it to make room again).
  std::filesystem::path fill() const {
    std::filesystem::path filler = dir_ / "filler";
    std::FILE* f = std::fopen(filler.c_str(), "wb");
    std::vector<char> block(1 << 16, 'f');
    if (f != nullptr) {
      while (std::fwrite(block.data(), 1, block.size(), f) == block.size() && std::fflush(f) == 0) {
      }
      std::fclose(f);
    }
    return filler;
  }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
};

}  // namespace simcap::testing
