#include "dataplane/dpdk/runtime.h"

#include "dataplane/dpdk/control_codec.h"

#include <rte_lcore.h>

#include <algorithm>

namespace skiff::dataplane::dpdk {
namespace {

// Counter fields of ServiceCounters / BackendCounters, in order.
constexpr int kPackets = 0;
constexpr int kBytes = 1;
constexpr int kNewFlows = 2;

}  // namespace

Result<std::unique_ptr<Runtime>> Runtime::start(const RuntimeOptions& options) {
  std::unique_ptr<Runtime> rt(new Runtime());
  rt->options_ = options;
  rt->builder_ = TableBuilder(options.pipeline.capacities);
  rt->serviceBase_.assign(options.pipeline.capacities.services + 1, {});
  rt->backendBase_.assign(options.pipeline.capacities.backends + 1, {});

  std::vector<unsigned> lcores;
  for (unsigned l = rte_get_next_lcore(static_cast<unsigned>(-1), 1, 0); l < RTE_MAX_LCORE;
       l = rte_get_next_lcore(l, 1, 0))
    lcores.push_back(l);
  if (lcores.empty())
    return Status::failure("no worker lcore: give EAL at least two (e.g. -l 0-1)");
  if (options.ports.empty()) {
    for (uint64_t p = rte_eth_find_next(0); p < RTE_MAX_ETHPORTS;
         p = rte_eth_find_next(static_cast<uint16_t>(p + 1))) {
      if (p != options.exceptionPort) rt->ports_.push_back(static_cast<uint16_t>(p));
    }
  } else {
    rt->ports_ = options.ports;
  }
  if (rt->ports_.empty())
    return Status::failure("no ports: EAL found none (add --vdev=net_null0, or bind a NIC)");

  const auto workers = static_cast<uint16_t>(lcores.size());
  // Ports first: each has up to one RX queue per worker and exactly one TX queue per worker.
  std::vector<uint16_t> rxQueues;
  for (uint16_t port : rt->ports_) {
    if (!rte_eth_dev_is_valid_port(port))
      return Status::failure("port " + std::to_string(port) + ": no such port");
    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(port, &info) != 0)
      return Status::failure("port " + portName(port) + ": cannot read device info");
    PortConfig pc = options.port;
    pc.rxQueues = std::min<uint16_t>(workers, std::max<uint16_t>(1, info.max_rx_queues));
    pc.txQueues = workers;
    const int socket = rte_eth_dev_socket_id(port);
    auto pool = mbufPoolForSocket(socket < 0 ? SOCKET_ID_ANY : socket, options.mbufsPerSocket);
    if (!pool.ok()) return pool.status();
    if (Status s = startPort(port, pc, *pool); !s.ok()) return s;
    rxQueues.push_back(pc.rxQueues);
  }
  if (options.exceptionPort != kNoPort) {
    PortConfig pc = options.port;
    pc.rxQueues = 1;
    pc.txQueues = workers;
    auto pool = mbufPoolForSocket(SOCKET_ID_ANY, options.mbufsPerSocket);
    if (!pool.ok()) return pool.status();
    if (Status s = startPort(options.exceptionPort, pc, *pool); !s.ok()) return s;
  }

  auto publisher = TablePublisher::create(workers);
  if (!publisher.ok()) return publisher.status();
  rt->publisher_ = std::move(*publisher);
  rt->publisher_->publish(rt->builder_.build());

  for (uint16_t w = 0; w < workers; ++w) {
    Worker wk;
    wk.lcore = lcores[w];
    wk.pipeline = std::make_unique<Pipeline>(options.pipeline);
    wk.ctx = std::make_unique<WorkerContext>();
    WorkerContext& c = *wk.ctx;
    c.pipeline = wk.pipeline.get();
    c.publisher = rt->publisher_.get();
    c.rcuId = w;
    for (size_t i = 0; i < rt->ports_.size(); ++i) {
      if (w < rxQueues[i]) c.rx.push_back({rt->ports_[i], w});
    }
    c.txQueue = w;
    c.exceptionPort = options.exceptionPort;
    c.exceptionQueue = w;
    c.stop = &rt->stop_;
    if (Status s = prepareWorker(c, rte_lcore_to_socket_id(wk.lcore)); !s.ok()) return s;
    rt->publisher_->registerWorker(w);
    rt->workers_.push_back(std::move(wk));
  }
  for (Worker& wk : rt->workers_) {
    if (int rc = rte_eal_remote_launch(workerMain, wk.ctx.get(), wk.lcore); rc != 0) {
      rt->stop();
      return Status::failure("lcore " + std::to_string(wk.lcore) + ": cannot launch (busy?)");
    }
  }
  rt->running_ = true;
  return rt;
}

Runtime::~Runtime() {
  stop();
}

void Runtime::stop() {
  stop_.store(true);
  for (Worker& wk : workers_) {
    rte_eal_wait_lcore(wk.lcore);
    releaseWorker(*wk.ctx);
  }
  if (running_) {
    for (uint16_t port : ports_)
      (void)rte_eth_dev_stop(port);
    if (options_.exceptionPort != kNoPort) (void)rte_eth_dev_stop(options_.exceptionPort);
  }
  running_ = false;
}

uint64_t Runtime::serviceSum(uint32_t id, int field) const {
  uint64_t sum = 0;
  for (const Worker& wk : workers_) {
    const ServiceCounters& c = wk.pipeline->counters().services[id];
    sum += field == kPackets    ? c.packets.get()
           : field == kBytes    ? c.bytes.get()
           : field == kNewFlows ? c.newFlows.get()
                                : c.drops[static_cast<size_t>(field - 3)].get();
  }
  return sum;
}

uint64_t Runtime::backendSum(uint32_t id, int field) const {
  uint64_t sum = 0;
  for (const Worker& wk : workers_) {
    const BackendCounters& c = wk.pipeline->counters().backends[id];
    sum += field == kPackets ? c.packets.get() : field == kBytes ? c.bytes.get() : c.newFlows.get();
  }
  return sum;
}

Status Runtime::apply(const ServiceDelta& delta) {
  if (Status s = builder_.apply(delta); !s.ok()) {
    if (s.message().rfind("too many", 0) == 0) ++failedUpdates_;
    return s;
  }
  // New ids count from now: remember where their (reused) counters stand.
  for (uint32_t id : builder_.newServiceIds()) {
    for (int f = 0; f < 3 + static_cast<int>(kDropReasonCount); ++f)
      serviceBase_[id][static_cast<size_t>(f)] = serviceSum(id, f);
  }
  for (uint32_t id : builder_.newBackendIds()) {
    for (int f = 0; f < 3; ++f)
      backendBase_[id][static_cast<size_t>(f)] = backendSum(id, f);
  }
  publisher_->publish(builder_.build());
  return {};
}

DataplaneStats Runtime::dataplaneStats() const {
  DataplaneStats out;
  for (const auto& [id, ps] : builder_.services()) {
    ServiceStats s;
    s.id = id;
    const auto& base = serviceBase_[ps.svcId];
    s.packets = serviceSum(ps.svcId, kPackets) - base[kPackets];
    s.bytes = serviceSum(ps.svcId, kBytes) - base[kBytes];
    s.newFlows = serviceSum(ps.svcId, kNewFlows) - base[kNewFlows];
    for (size_t r = 0; r < kDropReasonCount; ++r)
      s.drops[r] = serviceSum(ps.svcId, static_cast<int>(3 + r)) - base[3 + r];
    for (const auto& [key, bid] : ps.backendIds) {
      BackendStats b;
      b.backend = key;
      const auto& bb = backendBase_[bid];
      b.packets = backendSum(bid, kPackets) - bb[kPackets];
      b.bytes = backendSum(bid, kBytes) - bb[kBytes];
      b.newFlows = backendSum(bid, kNewFlows) - bb[kNewFlows];
      s.backends.push_back(b);
    }
    out.services.push_back(std::move(s));
  }
  for (const Worker& wk : workers_) {
    for (size_t r = 0; r < kDropReasonCount; ++r)
      out.unattributedDrops[r] += wk.pipeline->counters().unattributed[r].get();
  }
  out.failedUpdates = failedUpdates_;
  return out;
}

v1::Response Runtime::handle(const v1::Request& request) {
  v1::Response resp;
  if (request.has_apply()) {
    auto delta = fromProto(request.apply());
    Status s = delta.ok() ? apply(*delta) : delta.status();
    resp.set_ok(s.ok());
    resp.set_error(s.message());
  } else if (request.has_stats()) {
    *resp.mutable_stats() = stats();
    resp.set_ok(true);
  } else {
    resp.set_ok(false);
    resp.set_error("empty request: neither apply nor stats");
  }
  return resp;
}

v1::Stats Runtime::stats() const {
  v1::Stats out;
  toProto(dataplaneStats(), out);
  for (uint16_t port : ports_) {
    rte_eth_stats st{};
    v1::PortStats* p = out.add_ports();
    p->set_port(port);
    char name[RTE_ETH_NAME_MAX_LEN] = {};
    if (rte_eth_dev_get_name_by_port(port, name) == 0) p->set_name(name);
    if (rte_eth_stats_get(port, &st) == 0) {
      p->set_rx_packets(st.ipackets);
      p->set_tx_packets(st.opackets);
      p->set_rx_bytes(st.ibytes);
      p->set_tx_bytes(st.obytes);
      p->set_rx_missed(st.imissed);
      p->set_rx_errors(st.ierrors);
      p->set_tx_errors(st.oerrors);
    }
  }
  for (const Worker& wk : workers_) {
    const LcoreCounters& c = wk.pipeline->counters();
    v1::LcoreStats* l = out.add_lcores();
    l->set_lcore(wk.lcore);
    l->set_rx_packets(c.rxPackets.get());
    l->set_tx_packets(c.txPackets.get());
    l->set_pass_packets(c.passPackets.get());
    l->set_drop_packets(c.dropPackets.get());
    l->set_iterations(wk.ctx->iterations.get());
    l->set_busy_iterations(wk.ctx->busyIterations.get());
    for (size_t e = 0; e < kEventCount; ++e)
      l->add_events(c.events[e].get());
    l->set_conntrack_entries(wk.pipeline->conntrack().size());
  }
  return out;
}

}  // namespace skiff::dataplane::dpdk
