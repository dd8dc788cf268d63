"""Independent test oracles (public): explicit-power closed forms of the linear inner model, written apart from the
library's solvers so that tests compare the library with something it did not compute (see
``jaxdistill._src.testing.closed_form``), and ``noise_scale``, the private release's test-only switch (an audit's
negative control). For tests and checks, not for distilling."""

from jaxdistill._src.testing.closed_form import meta_grad as meta_grad
from jaxdistill._src.testing.closed_form import meta_grad_T1 as meta_grad_T1
from jaxdistill._src.testing.closed_form import ridge as ridge
from jaxdistill._src.testing.closed_form import theta_T as theta_T
from jaxdistill._src.testing.closed_form import theta_T_eq4_as_printed as theta_T_eq4_as_printed
from jaxdistill._src.testing.closed_form import theta_T_ridge_form as theta_T_ridge_form
from jaxdistill._src.testing.privacy import noise_scale as noise_scale
