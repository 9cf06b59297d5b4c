import os
W=os.environ.get("ORIENT_WORK", "/tmp/orient-fv")
import numpy as np, sys, os
W=os.environ.get("ORIENT_WORK", "/tmp/orient-fv")
from load import load
from sklearn.svm import SVC, LinearSVC
meta,F,th,la=load()
grp,test,plain=meta[:,0],meta[:,1],meta[:,2]
n=len(meta)
tr=np.where(test==0)[0]; te=np.where((test==1)&(plain==1))[0]
fold=(grp*2654435761%2**32)%3
def std(X):
    m=X[tr].reshape(-1,X.shape[-1]).mean(0); s=X[tr].reshape(-1,X.shape[-1]).std(0)+1e-6
    return (X-m)/s
col=std(F[:,:,:384])/np.sqrt(384); hog=std(F[:,:,384:880])/np.sqrt(496); asp=std(F[:,:,880:])*0.7
X=np.concatenate([col,hog,asp],2)
def post_of(P):
    # P[i,k,c]: class probs of version k. returns post[i,k0,r] for instance k0
    out=np.zeros((len(P),4,4))
    for k0 in range(4):
        lp=np.zeros((len(P),4))
        for j in range(4):
            v=(k0-j)%4
            for r in range(4): lp[:,r]+=np.log(P[:,v,(r-j)%4]+1e-12)
        lp-=lp.max(1,keepdims=True); p=np.exp(lp); out[:,k0]=p/p.sum(1,keepdims=True)
    return out
def rank_post(S,temp=1.0):
    # S[i,k]: upright score of version k. instance k0 turned by j -> version (k0-j)%4 ; post over r=j
    out=np.zeros((len(S),4,4))
    for k0 in range(4):
        sc=np.stack([S[:,(k0-j)%4] for j in range(4)],1)/temp
        sc-=sc.max(1,keepdims=True); p=np.exp(sc); out[:,k0]=p/p.sum(1,keepdims=True)
    return out
def fit4(idx,C=4,g=1):
    Xa=X[idx].reshape(-1,X.shape[-1]); y=np.tile(np.arange(4),len(idx))
    return SVC(C=C,gamma=g,probability=True,random_state=0).fit(Xa,y)
def oof(fitf,predf,sub=None):
    trs=tr if sub is None else sub
    R={}
    for f in range(3):
        a=trs[fold[trs]!=f]; b=tr[fold[tr]==f]
        m=fitf(a); R.update(dict(zip(b,predf(m,b))))
    m=fitf(trs); R.update(dict(zip(te,predf(m,te))))
    return R
def report(name,post):
    # post: dict i -> [4 k0, 4 r]
    def st(idx,thr):
        pp=np.array([post[i] for i in idx]); best=pp.argmax(2); conf=pp.max(2)
        forced=np.mean([best[:,k]==k for k in range(4)])
        ft=((best[:,0]!=0)&(conf[:,0]>=thr)).mean()
        ok=np.mean([(best[:,k]==k)&(conf[:,k]>=thr) for k in (1,2,3)])
        acc=(1-ft+3*ok)/4
        mx=max([0]+list(conf[:,0][best[:,0]!=0]))
        return forced,ft,acc,mx
    trp=tr[plain[tr]==1]
    _,_,_,thr=st(trp,2); thr+=1e-9
    f1,_,a1,_=st(trp,thr); f2,ft2,a2,mx=st(te,thr); _,_,a3,_=st(te,max(thr,mx+1e-9))
    print(f"{name:30s} oof forced={f1:.3f} acc@thr={a1:.3f} thr={thr:.3f}| test forced={f2:.3f} ft={ft2:.3f} acc={a2:.3f} | thr incl test acc={a3:.3f}",flush=True)
if __name__=='__main__':
    def pred4(m,idx):
        P=m.predict_proba(X[idx].reshape(-1,X.shape[-1])).reshape(len(idx),4,4)
        return post_of(P)
    R4=oof(fit4,pred4)
    report('old feats RBF 4-class',R4)
    np.save(W+'/R4.npy',np.array([R4[i] if i in R4 else np.zeros((4,4)) for i in range(n)]))
    # learning curve: half of train groups
    g=np.unique(grp[tr]); half=set(np.random.RandomState(0).choice(g,len(g)//2,replace=False))
    sub=np.array([i for i in tr if grp[i] in half])
    R4h=oof(fit4,pred4,sub)
    report('old feats RBF 4-class, half data',R4h)
