"""Transform recipes: declarative steps checked against a schema, run on Dask.

- :mod:`._recipe`: the steps and their checks (a 400 naming the step);
- :mod:`._ops`: each step as dask.dataframe operations on Arrow-backed partitions;
- :mod:`._io`: the only place Dask tasks read or write storage.
"""

from ._ops import ARROW_TYPES, apply_recipe, apply_step, cast_values
from ._recipe import AGGREGATES, OPS, TYPES, Recipe, Step, StepError, check_recipe
from ._saved import SavedRecipes, recipe_model
from ._service import TransformPlan, TransformService, check_output

__all__ = [
    "AGGREGATES",
    "ARROW_TYPES",
    "OPS",
    "TYPES",
    "Recipe",
    "SavedRecipes",
    "Step",
    "TransformPlan",
    "TransformService",
    "StepError",
    "apply_recipe",
    "apply_step",
    "cast_values",
    "check_output",
    "check_recipe",
    "recipe_model",
]
