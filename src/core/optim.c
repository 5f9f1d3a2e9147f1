/* optim: Adam and AdamW over flat parameter buffers, with PyTorch's
 * semantics (torch.optim.Adam / AdamW, amsgrad off):
 *   Adam:  g <- g + wd * theta   (L2 through the gradient)
 *   AdamW: theta <- theta * (1 - lr * wd)   (decoupled, before the update)
 *   m1 <- b1 m1 + (1 - b1) g,  m2 <- b2 m2 + (1 - b2) g^2
 *   theta <- theta - lr / (1 - b1^t) * m1 / (sqrt(m2) / sqrt(1 - b2^t) + eps)
 */
#include <math.h>

#include "facrnn/model.h"

void fr_adam_step(const fr_adam_cfg *cfg, long step, size_t n, double *params, const double *grad, double *m1,
                  double *m2)
{
    double b1 = cfg->beta1, b2 = cfg->beta2, lr = cfg->lr, wd = cfg->weight_decay;
    double bc1 = 1.0 - pow(b1, (double)step), bc2 = 1.0 - pow(b2, (double)step);
    double step_size = lr / bc1, sbc2 = sqrt(bc2);
    for (size_t q = 0; q < n; ++q) {
        double g = grad[q];
        if (wd != 0.0) {
            if (cfg->decoupled)
                params[q] *= 1.0 - lr * wd;
            else
                g += wd * params[q];
        }
        m1[q] = b1 * m1[q] + (1.0 - b1) * g;
        m2[q] = b2 * m2[q] + (1.0 - b2) * g * g;
        params[q] -= step_size * m1[q] / (sqrt(m2[q]) / sbc2 + cfg->eps);
    }
}
