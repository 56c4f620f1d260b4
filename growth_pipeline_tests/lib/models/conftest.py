"""The models tests' shared fixtures (defined in trained_models.py, which other tests import too)."""

from growth_pipeline_tests.lib.models.trained_models import blank_store as blank_store
from growth_pipeline_tests.lib.models.trained_models import clf_tm as clf_tm
from growth_pipeline_tests.lib.models.trained_models import data as data
from growth_pipeline_tests.lib.models.trained_models import ltv_tm as ltv_tm
from growth_pipeline_tests.lib.models.trained_models import store as store
