#include "peers.hpp"

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/numbers.hpp"
#include "db/detail/pg.hpp"
#include "redis/client.hpp"

namespace invsync::bench {

namespace {

using db::detail::PgConnection;

constexpr std::string_view kInsertLedger = R"(
INSERT INTO invsync_ledger (event_id, sku, delta, kind, ref, stream_id)
SELECT $1 || ':' || $2, t.sku, t.delta, $1, $2, 'peer'
FROM unnest($3::text[], $4::bigint[]) AS t(sku, delta))";

// The ledger rows of an order (sign -1) or a cancel (+1): the shop's own record of it, which the
// audit reads as it reads invsync's.
void InsertLedger(PgConnection& pg, const Operation& op) {
  const bool order = op.kind == OpKind::kOrder;
  std::vector<std::string> skus;
  std::vector<std::string> deltas;
  for (const auto& line : op.lines) {
    skus.push_back(line.sku);
    deltas.push_back(std::to_string(order ? -line.quantity : line.quantity));
  }
  pg.Exec(kInsertLedger, {std::string(order ? "deduct" : "cancel"), op.order_id,
                          db::detail::ArrayLiteral(skus), db::detail::ArrayLiteral(deltas)});
}

std::optional<std::int64_t> SelectQuantity(PgConnection& pg, const std::string& sku) {
  auto result = pg.Exec("SELECT quantity FROM inventory WHERE sku = $1", {sku});
  if (result.rows() == 0) {
    return std::nullopt;
  }
  return result.Int64(0, 0);
}

// Runs `body` in a transaction; an exception rolls it back and answers kError.
template <typename Body>
Answer InTransaction(PgConnection& pg, Body&& body) {
  try {
    pg.Exec("BEGIN");
    Answer answer = body();
    pg.Exec(answer.outcome == Outcome::kOk ? "COMMIT" : "ROLLBACK");
    return answer;
  } catch (const Error&) {
    try {
      pg.Exec("ROLLBACK");
    } catch (const Error&) {
      // The connection is gone; the next request fails the same way.
    }
    return {.outcome = Outcome::kError, .status = 500};
  }
}

class DbOnlyClient : public BlockingClient {
 public:
  explicit DbOnlyClient(const Servers& servers) : pg_(servers.database_url) {}

  Answer Execute(const Operation& op) override {
    if (op.kind == OpKind::kRead) {
      try {
        return SelectQuantity(pg_, op.sku) ? Answer{Outcome::kOk, 200}
                                           : Answer{Outcome::kError, 404};
      } catch (const Error&) {
        return {.outcome = Outcome::kError, .status = 500};
      }
    }
    return InTransaction(pg_, [&]() -> Answer {
      const bool order = op.kind == OpKind::kOrder;
      for (const auto& line : op.lines) {
        const std::string n = std::to_string(line.quantity);
        auto updated =
            pg_.Exec(order ? "UPDATE inventory SET quantity = quantity - $2, updated_at = now() "
                             "WHERE sku = $1 AND quantity >= $2"
                           : "UPDATE inventory SET quantity = quantity + $2, updated_at = now() "
                             "WHERE sku = $1",
                     {line.sku, n});
        if (updated.AffectedRows() == 0) {
          return {.outcome = Outcome::kRefused,
                  .status = 409,
                  .available = SelectQuantity(pg_, line.sku).value_or(0)};
        }
      }
      InsertLedger(pg_, op);
      return {.outcome = Outcome::kOk, .status = order ? 201 : 200};
    });
  }

 private:
  PgConnection pg_;
};

class NaiveCacheClient : public BlockingClient {
 public:
  explicit NaiveCacheClient(const Servers& servers)
      : redis_(redis::Endpoint::Parse(servers.redis_url), std::chrono::seconds(10)),
        pg_(servers.database_url) {}

  Answer Execute(const Operation& op) override {
    try {
      if (op.kind == OpKind::kRead) {
        return Cached(op.sku) ? Answer{Outcome::kOk, 200} : Answer{Outcome::kError, 404};
      }
      const bool order = op.kind == OpKind::kOrder;
      // Read every line, check, subtract in the client (the race: another client reads the same
      // values before these writes land).
      std::vector<std::int64_t> updated;
      for (const auto& line : op.lines) {
        auto current = Cached(line.sku);
        if (!current) {
          return {.outcome = Outcome::kError, .status = 404};
        }
        if (order && *current < line.quantity) {
          return {.outcome = Outcome::kRefused, .status = 409, .available = *current};
        }
        updated.push_back(*current + (order ? -line.quantity : line.quantity));
      }
      for (std::size_t i = 0; i < op.lines.size(); ++i) {
        const std::string value = std::to_string(updated[i]);
        redis_.Command({"HSET", "inventory:" + op.lines[i].sku, "quantity", value});
      }
      return InTransaction(pg_, [&]() -> Answer {
        for (std::size_t i = 0; i < op.lines.size(); ++i) {
          pg_.Exec("UPDATE inventory SET quantity = $2, updated_at = now() WHERE sku = $1",
                   {op.lines[i].sku, std::to_string(updated[i])});
        }
        InsertLedger(pg_, op);
        return {.outcome = Outcome::kOk, .status = order ? 201 : 200};
      });
    } catch (const Error&) {
      return {.outcome = Outcome::kError, .status = 500};
    }
  }

 private:
  // The seed's get_inventory: the cached quantity, else the database's, then cached.
  std::optional<std::int64_t> Cached(const std::string& sku) {
    const std::string key = "inventory:" + sku;
    if (auto text = redis_.Command({"HGET", key, "quantity"}).AsOptionalString()) {
      return ParseInt64(*text);
    }
    auto quantity = SelectQuantity(pg_, sku);
    if (quantity) {
      redis_.Command({"HSET", key, "product_id", sku, "quantity", std::to_string(*quantity)});
    }
    return quantity;
  }

  redis::Connection redis_;
  PgConnection pg_;
};

}  // namespace

ClientFactory DbOnlyClients(const Servers& servers) {
  return [servers] { return std::make_unique<DbOnlyClient>(servers); };
}

ClientFactory NaiveCacheClients(const Servers& servers) {
  return [servers] { return std::make_unique<NaiveCacheClient>(servers); };
}

}  // namespace invsync::bench
