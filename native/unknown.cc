// The backend for a process whose malloc fragstat cannot read (musl, an unrecognised allocator):
// no figures but RSS, no trim, and the reason in its limitations.
#include <cmath>
#include <string>

#include "backend.h"

namespace fragstat {

namespace {

class UnknownBackend final : public Backend {
 public:
  explicit UnknownBackend(std::string reason) : reason_(std::move(reason)) {}
  const char* Name() const override { return "unknown"; }
  std::string Version() const override { return std::string(); }
  std::string Limitations() const override { return reason_; }
  const std::vector<const char*>& RawFieldNames() const override {
    static const std::vector<const char*> none;
    return none;
  }
  bool HasStats() const override { return false; }
  bool CanTrim() const override { return false; }
  Status Read(Figures&, Detail*) override { return Status(); }
  Status Trim(double& result) override {
    result = NAN;
    return Status();
  }

 private:
  std::string reason_;
};

}  // namespace

Backend* MakeUnknown(std::string reason) { return new UnknownBackend(std::move(reason)); }

}  // namespace fragstat
