// What the PromQL engine reads series from: the storage read interface
// (storage/api/querier.h). The engine never sees a store, so it runs over the
// embedded storage, another backend or, in its tests, an in-memory one.
#pragma once

#include "storage/api/querier.h"

namespace espy::query::engine {

using Queryable = storage::Querier;
using SelectHints = storage::SelectHints;
using SeriesSet = storage::SeriesSet;

}  // namespace espy::query::engine
