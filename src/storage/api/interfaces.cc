// The out-of-line destructors of the storage interfaces: one home for their
// vtables (and a library with a source, which the build graph and its checks
// see like any other) instead of a copy in every user.
#include "storage/api/appender.h"
#include "storage/api/querier.h"

namespace espy::storage {

Appender::~Appender() = default;
SeriesSet::~SeriesSet() = default;
SampleIterator::~SampleIterator() = default;
Querier::~Querier() = default;
Queryable::~Queryable() = default;

}  // namespace espy::storage
