// Method factory and learning-rate rule (see method.h).
#include "methods/method.h"

#include "harness/check.h"
#include "methods/cross_scale.h"
#include "methods/mae.h"
#include "pch/torch_pch.h"
#include "methods/selective_mae.h"

namespace ablate {

std::shared_ptr<PretrainMethod> make_method(const RunConfig& config) {
  // validate() has checked the combination (e.g. CrossMAE and SelectiveMAE need the cross decoder).
  const std::string& name = config.method.name;
  ABLATE_CHECK(!(name == "crossmae" || name == "selectivemae") || config.model.decoder == "cross",
               "method {} with decoder {}", name, config.model.decoder);
  if (name == "mae" || name == "crossmae") return std::make_shared<Mae>(config);
  if (name == "selectivemae") return std::make_shared<SelectiveMae>(config);
  if (name == "crossscale") return std::make_shared<CrossScaleMae>(config);
  throw ConfigError("", "method.name", fmt::format("unknown method '{}'", name),
                    "one of: mae, crossmae, selectivemae, crossscale");
}

double lr_rule_multiplier(const MethodConfig& m) {
  const double r = m.recon_ratio > 0.0 ? m.recon_ratio : m.mask_ratio;
  if (m.lr_rule == "m_over_r") return m.mask_ratio / r;
  if (m.lr_rule == "r_over_m") return r / m.mask_ratio;
  if (m.lr_rule == "none") return 1.0;
  throw ConfigError("", "method.lr_rule", fmt::format("unknown rule '{}'", m.lr_rule),
                    "one of: m_over_r, r_over_m, none");
}

}  // namespace ablate
