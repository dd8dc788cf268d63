"""Everything about the caller's data in one place: checks, splits and standardisation of in-memory arrays
(``arrays``), row sources larger than memory and their sufficient statistics (``sources``), and the bundled
data sets (``datasets``)."""
