// The etcd backend's own behaviour on real etcd clusters: endpoints, an unreachable cluster, and
// the loss of one member of three while acknowledged writes and a watch go on.
#include "control/store/etcd_store.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "control/store/etcd_cluster.h"
#include "tests/control/store/store_test_util.h"

namespace skiff::store::testing {
namespace {

using Clock = std::chrono::steady_clock;

TEST(EtcdEndpoints, ParsesCommaSeparatedUrls) {
  EXPECT_EQ(parseEtcdEndpoints("http://127.0.0.1:2379"),
            (std::vector<std::string>{"http://127.0.0.1:2379"}));
  EXPECT_EQ(parseEtcdEndpoints("http://a:1, b:2 ,http://c:3/"),
            (std::vector<std::string>{"http://a:1", "http://b:2", "http://c:3"}));
  EXPECT_EQ(parseEtcdEndpoints("https://10.0.0.1:2379,https://etcd-1:2379/"),
            (std::vector<std::string>{"https://10.0.0.1:2379", "https://etcd-1:2379"}));
}

TEST(EtcdEndpoints, RefusesBadEntriesNamingThem) {
  auto messageOf = [](std::string_view text) {
    try {
      parseEtcdEndpoints(text);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  EXPECT_NE(messageOf("http://a:1,,http://b:2").find("endpoint 2"), std::string::npos);
  EXPECT_NE(messageOf("ftp://a:1").find("only http:// and https://"), std::string::npos);
  EXPECT_NE(messageOf("http://a").find("\"http://a\""), std::string::npos);
  EXPECT_NE(messageOf("a:port").find("HOST:PORT"), std::string::npos);
  EXPECT_NE(messageOf("").find("empty"), std::string::npos);
}

// A loopback port nothing listens on.
std::string deadEndpoint() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
}

TEST(EtcdStore, UnreachableClusterIsUnavailableNamingEveryEndpoint) {
  const std::string a = deadEndpoint();
  const std::string b = deadEndpoint();
  const auto start = Clock::now();
  StoreError error = storeErrorOf([&] {
    EtcdStore::open({.endpoints = {a, b}, .request_timeout = std::chrono::milliseconds(800)});
  });
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(errorCodeName(error.code()), errorCodeName(ErrorCode::kUnavailable));
  const std::string message = error.what();
  EXPECT_NE(message.find("etcd unreachable"), std::string::npos) << message;
  EXPECT_NE(message.find(a), std::string::npos) << message;
  EXPECT_NE(message.find(b), std::string::npos) << message;
  EXPECT_NE(message.find("800 ms"), std::string::npos) << message;
}

TEST(EtcdStore, FailsOverToALiveMemberAndReportsADeadOneAfterItsLoss) {
  LocalEtcdCluster cluster({.members = 1});
  // The dead endpoint first: the store moves on to the live one.
  auto store = EtcdStore::open({.endpoints = {deadEndpoint(), cluster.endpoints()[0]},
                                .key_prefix = "/failover",
                                .request_timeout = std::chrono::seconds(1)});
  const int64_t revision = store->create("/k", "v");
  EXPECT_EQ(store->get("/k")->mod_revision, revision);
  cluster.kill(0);
  EtcdStore& s = *store;
  StoreError error = storeErrorOf([&] { s.get("/k"); });
  EXPECT_EQ(errorCodeName(error.code()), errorCodeName(ErrorCode::kUnavailable));
  EXPECT_NE(std::string(error.what()).find(cluster.endpoints()[0]), std::string::npos)
      << error.what();
}

// A member that takes requests and never answers (SIGSTOPped: its connection stays up): a write
// it took may still be applied, so it is kOutcomeUnknown, which callers must not resend blindly
// (the apiserver answers 504, not the 503 that clients resend); a read is just kUnavailable.
TEST(EtcdStore, AWriteWithoutAnAnswerIsOutcomeUnknownAReadIsUnavailable) {
  LocalEtcdCluster cluster({.members = 1});
  auto store = EtcdStore::open({.endpoints = cluster.endpoints(),
                                .key_prefix = "/silent",
                                .request_timeout = std::chrono::milliseconds(1000)});
  store->create("/before", "v");
  ASSERT_EQ(::kill(cluster.pid(0), SIGSTOP), 0);
  EtcdStore& s = *store;
  StoreError write = storeErrorOf([&] { s.create("/during", "v"); });
  StoreError read = storeErrorOf([&] { s.get("/before"); });
  ASSERT_EQ(::kill(cluster.pid(0), SIGCONT), 0);
  EXPECT_EQ(errorCodeName(write.code()), errorCodeName(ErrorCode::kOutcomeUnknown)) << write.what();
  EXPECT_NE(std::string(write.what()).find("outcome is unknown"), std::string::npos)
      << write.what();
  EXPECT_EQ(errorCodeName(read.code()), errorCodeName(ErrorCode::kUnavailable)) << read.what();
  // The member answers again: so does the store (whether "/during" landed is etcd's to say).
  EXPECT_GT(store->create("/after", "v"), 0);
  EXPECT_TRUE(store->get("/before").has_value());
}

// One member of three is SIGKILLed while writers keep writing and a watch keeps reading: writes
// go on (a writer retries what failed), every acknowledged write is there afterwards (also on the
// killed member once it is back), and the watch delivers every acknowledged write exactly once,
// in order, across the stream it lost.
TEST(EtcdStore, LosingOneMemberOfThreeLosesNoAcknowledgedWrite) {
  LocalEtcdCluster cluster({.members = 3});
  EtcdOptions options{.endpoints = cluster.endpoints(), .key_prefix = "/durability"};
  auto store = EtcdStore::open(options);
  // The store reads and writes through the first member: that is the one killed.
  const int64_t start = store->currentRevision();
  WatchPtr watch = store->watch("/w/", start);

  constexpr int kWriters = 4;
  std::atomic<bool> stop{false};
  std::atomic<bool> killed{false};
  std::atomic<int> acked_after_kill{0};
  std::atomic<int> retries{0};
  std::mutex mu;
  std::map<std::string, int64_t> acknowledged;  // key -> revision
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop.load(); ++i) {
        const std::string key = "/w/" + std::to_string(w) + "-" + std::to_string(i);
        const std::string value = "value-" + key;
        int64_t revision = 0;
        for (int attempt = 0; revision == 0 && attempt < 50; ++attempt) {
          try {
            revision = store->create(key, value);
          } catch (const StoreError& e) {
            if (e.code() == ErrorCode::kAlreadyExists && attempt > 0) {
              // An earlier attempt was applied although its answer was lost.
              auto kv = store->get(key);
              if (kv && kv->value == value) revision = kv->mod_revision;
              continue;
            }
            if (e.code() != ErrorCode::kUnavailable && e.code() != ErrorCode::kOutcomeUnknown) {
              ADD_FAILURE() << e.what();
              return;
            }
            ++retries;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        }
        if (revision == 0) {
          ADD_FAILURE() << "write of " << key << " never succeeded";
          return;
        }
        std::lock_guard lock(mu);
        acknowledged[key] = revision;
        if (killed.load()) ++acked_after_kill;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  cluster.kill(0);
  killed = true;
  const auto kill_time = Clock::now();
  while (acked_after_kill.load() < 200 && Clock::now() - kill_time < std::chrono::seconds(15)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  for (auto& writer : writers) {
    writer.join();
  }
  EXPECT_GE(acked_after_kill.load(), 200) << "writes did not continue after the kill";

  // Everything acknowledged is there, through the surviving members.
  ListResult all = store->list("/w/");
  std::map<std::string, int64_t> stored;
  for (const KeyValue& kv : all.kvs) {
    stored[kv.key] = kv.mod_revision;
    EXPECT_EQ(kv.value, "value-" + kv.key);
  }
  for (const auto& [key, revision] : acknowledged) {
    auto it = stored.find(key);
    ASSERT_NE(it, stored.end()) << key << " was acknowledged at " << revision << " and is lost";
    EXPECT_EQ(it->second, revision) << key;
  }

  // The watch lost its stream with the member and resumed on another one: every write once, in
  // revision order (a retried write that was applied twice would show as a failed create, so the
  // stored keys are exactly the events).
  std::vector<Event> events = readEvents(*watch, stored.size(), std::chrono::seconds(15));
  ASSERT_EQ(events.size(), stored.size()) << (watch->error() ? watch->error()->what() : "");
  int64_t previous = start;
  for (const Event& event : events) {
    EXPECT_GT(event.kv.mod_revision, previous) << describe(event);
    previous = event.kv.mod_revision;
    EXPECT_EQ(event.type, Event::Type::kCreate);
    EXPECT_EQ(stored.at(event.kv.key), event.kv.mod_revision) << describe(event);
  }

  // The killed member comes back with everything (read through it alone).
  cluster.restart(0);
  auto alone =
      EtcdStore::open({.endpoints = {cluster.endpoints()[0]}, .key_prefix = "/durability"});
  EXPECT_EQ(alone->list("/w/", {.count_only = true}).count, static_cast<int64_t>(stored.size()));
  std::cout << acknowledged.size() << " writes acknowledged, " << acked_after_kill.load()
            << " after the kill, " << retries.load() << " retried\n";
}

// A create that retries what failed for want of a member, as a client does: an attempt whose
// outcome was unknown and that was applied shows as kAlreadyExists with our value. Returns the
// revision, or 0 when it never succeeded.
int64_t createRetrying(Store& store, const std::string& key, const std::string& value) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    try {
      return store.create(key, value);
    } catch (const StoreError& e) {
      if (e.code() == ErrorCode::kAlreadyExists && attempt > 0) {
        auto kv = store.get(key);
        if (kv && kv->value == value) return kv->mod_revision;
        continue;
      }
      if (e.code() != ErrorCode::kUnavailable && e.code() != ErrorCode::kOutcomeUnknown) {
        ADD_FAILURE() << e.what();
        return 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return 0;
}

// `events` are exactly the changes at `revisions` (ascending), once each and in order.
void expectExactly(const std::vector<Event>& events, const std::vector<int64_t>& revisions,
                   const std::string& who) {
  ASSERT_EQ(events.size(), revisions.size()) << who;
  for (size_t i = 0; i < events.size(); ++i) {
    ASSERT_EQ(events[i].kv.mod_revision, revisions[i])
        << who << ": event " << i << " is " << describe(events[i]);
  }
}

// 500 watches of one store share one stream; with writers going on, every one receives every
// event in revision order, and cancelling some of them midway does not disturb the others.
TEST(EtcdWatchMux, FiveHundredWatchesOnOneStreamReceiveEveryEventInOrder) {
  LocalEtcdCluster cluster({.members = 1});
  auto store = EtcdStore::open({.endpoints = cluster.endpoints(), .key_prefix = "/fanout"});
  constexpr int kWatches = 500;
  std::vector<WatchPtr> watches;
  for (int i = 0; i < kWatches; ++i) {
    watches.push_back(store->watch("/f/", 0));
  }
  EXPECT_EQ(store->watchStats().streams_opened, 1);
  EXPECT_EQ(store->watchStats().watchers, kWatches);
  EXPECT_EQ(store->watchStats().stream_endpoint, cluster.endpoints()[0]);

  constexpr int kWriters = 4;
  constexpr int kPerWriter = 50;  // a create, updates, and a delete of each writer's key
  std::mutex mu;
  std::vector<int64_t> revisions;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const std::string key = "/f/" + std::to_string(w);
      int64_t revision = store->create(key, "0");
      std::vector<int64_t> mine{revision};
      for (int i = 1; i + 1 < kPerWriter; ++i) {
        revision = store->update(key, std::to_string(i), revision);
        mine.push_back(revision);
      }
      mine.push_back(store->remove(key, revision).mod_revision);
      std::lock_guard lock(mu);
      revisions.insert(revisions.end(), mine.begin(), mine.end());
    });
  }
  // Cancel every tenth watch while the writes go on.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int i = 0; i < kWatches; i += 10) {
    watches[i]->cancel();
  }
  for (auto& writer : writers) {
    writer.join();
  }
  std::sort(revisions.begin(), revisions.end());
  ASSERT_EQ(revisions.size(), static_cast<size_t>(kWriters * kPerWriter));
  for (int i = 0; i < kWatches; ++i) {
    if (i % 10 == 0) {
      std::vector<Event> rest;
      EXPECT_FALSE(watches[i]->next(rest, std::chrono::milliseconds(1)));
      EXPECT_FALSE(watches[i]->error().has_value());
      continue;
    }
    std::vector<Event> events = readEvents(*watches[i], revisions.size());
    expectExactly(events, revisions, "watch " + std::to_string(i));
    for (const Event& event : events) {
      const bool last = event.type == Event::Type::kDelete;
      ASSERT_EQ(last, event.kv.value.empty() && event.prev.has_value()) << describe(event);
    }
  }
  EXPECT_EQ(store->watchStats().streams_opened, 1);
  EXPECT_EQ(store->watchStats().watchers, kWatches - kWatches / 10);
  watches.clear();
  EXPECT_EQ(store->watchStats().watchers, 0);
}

// A watcher nobody reads is ended with kCompacted once its buffer is full; the others on the
// stream go on.
TEST(EtcdWatchMux, AStuckWatcherEndsWithoutHoldingBackTheOthers) {
  LocalEtcdCluster cluster({.members = 1});
  auto store = EtcdStore::open(
      {.endpoints = cluster.endpoints(), .key_prefix = "/stuck", .watch_buffer_events = 50});
  WatchPtr stuck = store->watch("/s/", 0);
  WatchPtr reader = store->watch("/s/", 0);
  std::vector<Event> events;
  std::vector<int64_t> revisions;
  for (int i = 0; i < 200; ++i) {
    revisions.push_back(store->create("/s/" + std::to_string(i), "v"));
    reader->next(events, std::chrono::milliseconds(0));
  }
  std::vector<Event> rest = readEvents(*reader, revisions.size() - events.size());
  events.insert(events.end(), std::make_move_iterator(rest.begin()),
                std::make_move_iterator(rest.end()));
  expectExactly(events, revisions, "the reader");
  std::vector<Event> buffered;
  while (stuck->next(buffered, std::chrono::seconds(5))) {
  }
  EXPECT_LE(buffered.size(), 50u);
  ASSERT_TRUE(stuck->error().has_value());
  EXPECT_EQ(errorCodeName(stuck->error()->code()), errorCodeName(ErrorCode::kCompacted));
  EXPECT_NE(std::string(stuck->error()->what()).find("fell behind"), std::string::npos)
      << stuck->error()->what();
}

// The member the shared stream is on is SIGKILLed while writers go on: the stream moves to
// another member and each of its watches resumes after the last revision it had, so every watch
// sees every write once, in order.
TEST(EtcdWatchMux, KillingTheStreamsMemberLosesAndDuplicatesNoEvent) {
  LocalEtcdCluster cluster({.members = 3});
  auto store = EtcdStore::open({.endpoints = cluster.endpoints(), .key_prefix = "/mux-kill"});
  const int64_t start = store->currentRevision();
  constexpr int kWatches = 50;
  std::vector<WatchPtr> watches;
  for (int i = 0; i < kWatches; ++i) {
    // Half from a revision, half from now (created after `start` with nothing written yet).
    watches.push_back(store->watch("/k/", i % 2 == 0 ? start : 0));
  }
  const std::string endpoint = store->watchStats().stream_endpoint;
  const auto all = cluster.endpoints();
  const size_t victim =
      static_cast<size_t>(std::find(all.begin(), all.end(), endpoint) - all.begin());
  ASSERT_LT(victim, all.size()) << endpoint;

  std::atomic<bool> stop{false};
  std::atomic<bool> killed{false};
  std::atomic<int> acked_after_kill{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop.load(); ++i) {
        const std::string key = "/k/" + std::to_string(w) + "-" + std::to_string(i);
        if (createRetrying(*store, key, "v" + key) == 0) {
          ADD_FAILURE() << "write of " << key << " never succeeded";
          return;
        }
        if (killed.load()) ++acked_after_kill;
      }
    });
  }
  // Read the watches as the writes go on (half of them), so that the kill finds them at
  // different revisions.
  std::vector<std::vector<Event>> seen(kWatches);
  auto drain = [&](std::chrono::milliseconds timeout) {
    for (int i = 0; i < kWatches; i += 2) {
      watches[i]->next(seen[i], timeout);
    }
  };
  for (int round = 0; round < 10; ++round) {
    drain(std::chrono::milliseconds(30));
  }
  cluster.kill(victim);
  killed = true;
  const auto kill_time = Clock::now();
  while (acked_after_kill.load() < 150 && Clock::now() - kill_time < std::chrono::seconds(15)) {
    drain(std::chrono::milliseconds(20));
  }
  stop = true;
  for (auto& writer : writers) {
    writer.join();
  }
  EXPECT_GE(acked_after_kill.load(), 150) << "writes did not continue after the kill";

  std::vector<int64_t> revisions;
  for (const KeyValue& kv : store->list("/k/").kvs) {
    revisions.push_back(kv.mod_revision);
  }
  std::sort(revisions.begin(), revisions.end());
  for (int i = 0; i < kWatches; ++i) {
    std::vector<Event> rest =
        readEvents(*watches[i], revisions.size() - seen[i].size(), std::chrono::seconds(15));
    seen[i].insert(seen[i].end(), std::make_move_iterator(rest.begin()),
                   std::make_move_iterator(rest.end()));
    expectExactly(seen[i], revisions,
                  "watch " + std::to_string(i) + " " +
                      (watches[i]->error() ? watches[i]->error()->what() : ""));
  }
  const EtcdWatchStats stats = store->watchStats();
  EXPECT_GE(stats.streams_opened, 2);
  EXPECT_EQ(stats.watchers, kWatches);
  EXPECT_NE(stats.stream_endpoint, endpoint);
}

// Certificates made with openssl for one test: a CA, etcd's serving certificate for 127.0.0.1
// and a client certificate it signed, and a second CA that signed nothing of etcd's.
struct TestPki {
  TempDir dir;
  std::string ca, server_cert, server_key, client_cert, client_key, other_ca;

  TestPki() {
    const std::string d = dir.path().string();
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    const std::string script =
        "set -e; cd " + d + "; exec >openssl.log 2>&1\n" + "openssl req -x509" + key +
        " -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca\n" + "openssl req -x509" + key +
        " -keyout other.key -out other.crt -days 2 -subj /CN=other\n" + "openssl req" + key +
        " -keyout server.key -out server.csr -subj /CN=etcd\n" +
        "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' "
        ">server.ext\n" +
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile server.ext -out server.crt\n" +
        "openssl req" + key + " -keyout client.key -out client.csr -subj /CN=skiff\n" +
        "printf 'extendedKeyUsage=clientAuth\\n' >client.ext\n" +
        "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile client.ext -out client.crt\n";
    std::ofstream(dir.file("make.sh")) << script;
    if (std::system(("sh " + dir.file("make.sh")).c_str()) != 0) {
      throw std::runtime_error("openssl failed: see " + d + "/openssl.log");
    }
    ca = dir.file("ca.crt");
    server_cert = dir.file("server.crt");
    server_key = dir.file("server.key");
    client_cert = dir.file("client.crt");
    client_key = dir.file("client.key");
    other_ca = dir.file("other.crt");
  }

  LocalEtcdOptions clusterOptions() const {
    return {.members = 1,
            .cert_file = server_cert,
            .key_file = server_key,
            .trusted_ca_file = ca,
            .ca_file = ca,
            .client_cert_file = client_cert,
            .client_key_file = client_key};
  }
};

TEST(EtcdTls, ClientCertificateAuthWorksForReadsWritesWatchesAndLeases) {
  TestPki pki;
  LocalEtcdCluster cluster(pki.clusterOptions());
  ASSERT_EQ(cluster.endpoints().at(0).rfind("https://", 0), 0u) << cluster.endpoints().at(0);
  auto store = EtcdStore::open({.endpoints = cluster.endpoints(),
                                .ca_file = pki.ca,
                                .cert_file = pki.client_cert,
                                .key_file = pki.client_key});
  WatchPtr watch = store->watch("/tls/", store->currentRevision());
  const int64_t created = store->create("/tls/a", "1");
  EXPECT_EQ(store->update("/tls/a", "2", created), created + 1);
  EXPECT_STORE_ERROR(ErrorCode::kAlreadyExists, store->create("/tls/a", "3"));
  EXPECT_EQ(store->get("/tls/a")->value, "2");
  const int64_t lease = store->grantLease(30);
  store->createWithLease("/tls/b", "x", lease);
  EXPECT_EQ(store->leaseTimeToLive(lease, true).keys, (std::vector<std::string>{"/tls/b"}));
  store->revokeLease(lease);
  EXPECT_EQ(store->list("/tls/").kvs.size(), 1u);
  std::vector<Event> events = readEvents(*watch, 4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].type, Event::Type::kCreate);
  EXPECT_EQ(events[1].type, Event::Type::kUpdate);
  EXPECT_EQ(events[2].kv.key, "/tls/b");
  EXPECT_EQ(events[3].type, Event::Type::kDelete);
}

TEST(EtcdTls, AWrongCaOrNoClientCertificateIsAClearError) {
  TestPki pki;
  LocalEtcdCluster cluster(pki.clusterOptions());
  const auto timeout = std::chrono::milliseconds(1500);
  StoreError wrong_ca = storeErrorOf([&] {
    EtcdStore::open({.endpoints = cluster.endpoints(),
                     .ca_file = pki.other_ca,
                     .cert_file = pki.client_cert,
                     .key_file = pki.client_key,
                     .request_timeout = timeout});
  });
  EXPECT_EQ(errorCodeName(wrong_ca.code()), errorCodeName(ErrorCode::kUnavailable));
  const std::string message = wrong_ca.what();
  std::cout << "wrong CA: " << message << std::endl;
  EXPECT_NE(message.find("TLS"), std::string::npos) << message;
  EXPECT_NE(message.find("--etcd-cafile"), std::string::npos) << message;
  EXPECT_NE(message.find(cluster.endpoints().at(0)), std::string::npos) << message;

  // etcd's --client-cert-auth refuses a client without a certificate.
  StoreError anonymous = storeErrorOf([&] {
    EtcdStore::open(
        {.endpoints = cluster.endpoints(), .ca_file = pki.ca, .request_timeout = timeout});
  });
  EXPECT_EQ(errorCodeName(anonymous.code()), errorCodeName(ErrorCode::kUnavailable))
      << anonymous.what();

  StoreError missing = storeErrorOf([&] {
    EtcdStore::open({.endpoints = cluster.endpoints(), .ca_file = pki.dir.file("nope.crt")});
  });
  EXPECT_NE(std::string(missing.what()).find("--etcd-cafile"), std::string::npos) << missing.what();
  EXPECT_NE(std::string(missing.what()).find("nope.crt"), std::string::npos) << missing.what();
  StoreError half = storeErrorOf([&] {
    EtcdStore::open(
        {.endpoints = cluster.endpoints(), .ca_file = pki.ca, .cert_file = pki.client_cert});
  });
  EXPECT_NE(std::string(half.what()).find("--etcd-keyfile"), std::string::npos) << half.what();
}

}  // namespace
}  // namespace skiff::store::testing
