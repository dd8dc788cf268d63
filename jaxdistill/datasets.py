"""Bundled data sets (public; see ``jaxdistill._src.data.datasets``)."""

from jaxdistill._src.data.datasets import IMAGES as IMAGES
from jaxdistill._src.data.datasets import NAMES as NAMES
from jaxdistill._src.data.datasets import TIME_SERIES as TIME_SERIES
from jaxdistill._src.data.datasets import ar_windows as ar_windows
from jaxdistill._src.data.datasets import load as load
from jaxdistill._src.data.datasets import load_csv as load_csv
from jaxdistill._src.data.datasets import split as split
from jaxdistill._src.data.datasets import synthetic as synthetic
from jaxdistill._src.data.datasets import train_test_split as train_test_split
