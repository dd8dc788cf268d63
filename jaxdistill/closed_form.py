"""Deprecated: the test oracles are `jaxdistill.testing` (the same functions). Importing this module warns."""

import warnings

from jaxdistill.testing import meta_grad as meta_grad
from jaxdistill.testing import meta_grad_T1 as meta_grad_T1
from jaxdistill.testing import ridge as ridge
from jaxdistill.testing import theta_T as theta_T
from jaxdistill.testing import theta_T_eq4_as_printed as theta_T_eq4_as_printed
from jaxdistill.testing import theta_T_ridge_form as theta_T_ridge_form

warnings.warn("jaxdistill.closed_form is deprecated: the test oracles are jaxdistill.testing (the same functions).",
              DeprecationWarning, stacklevel=2)
