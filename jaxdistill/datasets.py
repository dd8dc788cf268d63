"""Bundled data sets (public; see ``jaxdistill._src.datasets``)."""

from jaxdistill._src.io.datasets import IMAGES as IMAGES
from jaxdistill._src.io.datasets import NAMES as NAMES
from jaxdistill._src.io.datasets import TIME_SERIES as TIME_SERIES
from jaxdistill._src.io.datasets import ar_windows as ar_windows
from jaxdistill._src.io.datasets import load as load
from jaxdistill._src.io.datasets import load_csv as load_csv
from jaxdistill._src.io.datasets import split as split
from jaxdistill._src.io.datasets import synthetic as synthetic
from jaxdistill._src.io.datasets import train_test_split as train_test_split
