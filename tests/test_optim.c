/* Adam / AdamW against trajectories computed by hand on the quadratic
 * f(theta) = 1/2 (theta - 3)^2, gradient g = theta - 3, from theta0 = 1,
 * lr = 0.1, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, PyTorch semantics:
 *   m <- b1 m + (1-b1) g,  v <- b2 v + (1-b2) g^2
 *   theta <- theta - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 * (The expected values were worked out in 40-digit decimal arithmetic.) */
#include "facrnn/model.h"
#include "testlib.h"

static void run3(const fr_adam_cfg *cfg, double out[3])
{
    double th = 1.0, m = 0.0, v = 0.0;
    for (long t = 1; t <= 3; ++t) {
        double g = th - 3.0;
        fr_adam_step(cfg, t, 1, &th, &g, &m, &v);
        out[t - 1] = th;
    }
}

static void test_adam(void)
{
    fr_adam_cfg cfg = {0.1, 0.9, 0.999, 1e-8, 0.0, 0};
    double th[3];
    run3(&cfg, th);
    /* t=1: g = -2, m = -0.2, v = 0.004; m/(1-0.9) = -2, v/(1-0.999) = 4,
     *      theta = 1 + 0.1 * 2/(2 + 1e-8) = 1.0999999995 */
    FR_ASSERT_CLOSE(th[0], 1.0999999995000000474, 1e-14, 0);
    /* t=2: g = -1.9000000005, m = 0.9(-0.2) + 0.1 g = -0.37000000005,
     *      v = 0.999(0.004) + 0.001 g^2 = 0.0076060000019,
     *      theta = theta1 - 0.1/0.19 * m / (sqrt(v)/sqrt(0.001999) + 1e-8) */
    FR_ASSERT_CLOSE(th[1], 1.1998335133789077567, 1e-14, 0);
    /* t=3: g = -1.80016648662109, m = -0.513016648707109, v = 0.0108389933814518,
     *      bias corrections 1 - 0.9^3 = 0.271, 1 - 0.999^3 = 0.002997001 */
    FR_ASSERT_CLOSE(th[2], 1.2993766071878867230, 1e-14, 0);

    /* Adam with weight decay 0.5: the gradient becomes g + 0.5 theta.
     * t=1: g = -2 + 0.5 = -1.5 -> theta = 1 + 0.1 * 1.5/(1.5 + 1e-8) */
    cfg.weight_decay = 0.5;
    run3(&cfg, th);
    FR_ASSERT_CLOSE(th[0], 1.099999999333333367, 1e-14, 0);
    FR_ASSERT_CLOSE(th[1], 1.1995877709680260459, 1e-14, 0);
    FR_ASSERT_CLOSE(th[2], 1.2984137265345088164, 1e-14, 0);
}

static void test_adamw(void)
{
    /* AdamW, weight decay 0.5: theta <- theta (1 - 0.1 * 0.5) first, then
     * the plain Adam update with the undecayed gradient.
     * t=1: g = -2, theta = 1 * 0.95 + 0.1 * 2/(2 + 1e-8) = 1.0499999995 */
    fr_adam_cfg cfg = {0.1, 0.9, 0.999, 1e-8, 0.5, 1};
    double th[3];
    run3(&cfg, th);
    FR_ASSERT_CLOSE(th[0], 1.049999999500000003, 1e-14, 0);
    /* t=2: g = 1.0499999995 - 3, theta = 0.95 theta1 - 0.1/0.19 * m/(...) */
    FR_ASSERT_CLOSE(th[1], 1.0974260041910173236, 1e-14, 0);
    FR_ASSERT_CLOSE(th[2], 1.1423606344413961278, 1e-14, 0);
}

/* Many entries at once behave like independent scalars. */
static void test_vector(void)
{
    fr_adam_cfg cfg = {0.1, 0.9, 0.999, 1e-8, 0.0, 0};
    double p[2] = {1.0, 1.0}, g[2], m[2] = {0}, v[2] = {0};
    for (long t = 1; t <= 3; ++t) {
        g[0] = p[0] - 3.0;
        g[1] = p[1] - 3.0;
        fr_adam_step(&cfg, t, 2, p, g, m, v);
    }
    FR_ASSERT_CLOSE(p[0], 1.2993766071878867230, 1e-14, 0);
    CU_ASSERT_EQUAL(p[0], p[1]);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("optim", NULL, NULL);
    CU_add_test(s, "Adam 3-step trajectory (with and without L2)", test_adam);
    CU_add_test(s, "AdamW 3-step trajectory", test_adamw);
    CU_add_test(s, "flat buffers", test_vector);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
