#pragma once

#include <string>

#include "bench_support.hpp"
#include "driver.hpp"

namespace invsync::bench {

/// `db-only`: what most shops run. One PostgreSQL transaction per order: a conditional
/// `UPDATE inventory SET quantity = quantity - n WHERE sku = $1 AND quantity >= n` per line (in
/// SKU order, so concurrent orders cannot deadlock) and the ledger rows; reads are a SELECT.
[[nodiscard]] ClientFactory DbOnlyClients(const Servers& servers);

/// `naive-cache`: the seed's algorithm. Read the Redis hash (filling it from the database on a
/// miss), check and subtract in the client, write the new value back with HSET, then write the
/// same value to the database (`UPDATE inventory SET quantity = <new>`) with the ledger rows.
/// Two clients may read the same value and both sell it: that is the oversell the audit shows.
[[nodiscard]] ClientFactory NaiveCacheClients(const Servers& servers);

}  // namespace invsync::bench
