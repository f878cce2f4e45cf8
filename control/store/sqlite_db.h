#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "control/store/store.h"

// Thin RAII wrappers over the SQLite C API for the embedded store: connections, prepared
// statements and the mapping of SQLite result codes to StoreError.
namespace skiff::store::sqlite {

// The store's error code for a SQLite result code (primary or extended).
ErrorCode errorCodeFor(int rc);

// Throws the StoreError for a failed SQLite call, naming the database file and what was being done.
[[noreturn]] void throwError(sqlite3* db, int rc, std::string_view path, std::string_view action);

class Statement {
 public:
  Statement() = default;
  // `path` must outlive the statement (it names the database in error messages).
  Statement(sqlite3* db, std::string_view sql, const std::string& path);
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bindInt(int index, int64_t value);
  // The bytes are not copied: they must stay alive until the statement is reset.
  void bindBlob(int index, std::string_view value);
  void bindText(int index, std::string_view value);
  void bindNull(int index);

  // Runs the statement one step; true when a row is ready, false when done.
  bool step();
  // Runs the statement to completion, ignoring rows.
  void run();
  // Makes the statement ready for new bindings.
  void reset();

  int64_t columnInt(int column) const;
  // Valid until the next step() or reset().
  std::string_view columnBlob(int column) const;
  std::string columnText(int column) const;
  bool columnIsNull(int column) const;

  sqlite3_stmt* handle() const { return stmt_; }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  const std::string* path_ = nullptr;
};

// Resets a statement when leaving a scope, so early returns and exceptions leave it reusable.
class StatementScope {
 public:
  explicit StatementScope(Statement& statement) : statement_(statement) {}
  ~StatementScope() { statement_.reset(); }
  StatementScope(const StatementScope&) = delete;
  StatementScope& operator=(const StatementScope&) = delete;

 private:
  Statement& statement_;
};

class Connection {
 public:
  // Opens `path` (created when `create`). The connection is used by one thread at a time.
  Connection(const std::string& path, bool create);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }

  Statement prepare(std::string_view sql) { return Statement(db_, sql, path_); }
  // Runs one or more statements without results (DDL, pragmas that set).
  void exec(const std::string& sql);
  // The first column of the first row of `sql` (a pragma that reads), as an integer or text.
  int64_t queryInt(const std::string& sql);
  std::string queryText(const std::string& sql);
  // True while a transaction is open.
  bool inTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace skiff::store::sqlite
