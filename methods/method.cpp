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
  const MethodKind name = config.method.name;
  ABLATE_CHECK(!(name == MethodKind::crossmae || name == MethodKind::selectivemae) ||
                   config.model.decoder == DecoderKind::cross,
               "method {} with decoder {}", name_of(name), name_of(config.model.decoder));
  if (name == MethodKind::selectivemae) return std::make_shared<SelectiveMae>(config);
  if (name == MethodKind::crossscale) return std::make_shared<CrossScaleMae>(config);
  return std::make_shared<Mae>(config);  // mae, crossmae (the decoder differs)
}

double lr_rule_multiplier(const MethodConfig& m) {
  const double r = m.recon_ratio > 0.0 ? m.recon_ratio : m.mask_ratio;
  if (m.lr_rule == LrRule::m_over_r) return m.mask_ratio / r;
  if (m.lr_rule == LrRule::r_over_m) return r / m.mask_ratio;
  return 1.0;  // none
}

}  // namespace ablate
